# mta-core's resolver: what it keeps from hostile DNS answers (dns/answers.cpp,
# over c-ares' parsers) and its name checks. No I/O, no Boost.
pkg_check_modules(FUZZ_CARES REQUIRED IMPORTED_TARGET libcares)
mp_add_fuzzer(fuzz_dns_answers SOURCES dns_answers_fuzz.cpp
  ${CMAKE_SOURCE_DIR}/mta-core/dns/answers.cpp ${CMAKE_SOURCE_DIR}/mta-core/dns/names.cpp
  LIBS PkgConfig::FUZZ_CARES)
target_include_directories(fuzz_dns_answers PRIVATE ${CMAKE_SOURCE_DIR}/mta-core)
