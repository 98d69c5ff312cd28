# policyd-spf: our own RFC 7208 parsing (record pre-check and rewrite,
# macro strings and explanation expansion). spf_record.cpp does no I/O.
add_library(fuzz_spf_record_lib STATIC ${CMAKE_SOURCE_DIR}/policyd-spf/spf_record.cpp)
target_include_directories(fuzz_spf_record_lib PUBLIC ${CMAKE_SOURCE_DIR}/policyd-spf)

mp_add_fuzzer(fuzz_spf_record SOURCES spf_record_fuzz.cpp LIBS fuzz_spf_record_lib)
mp_add_fuzzer(fuzz_spf_macro SOURCES spf_macro_fuzz.cpp LIBS fuzz_spf_record_lib)

# The DNS answer parser (hostile input); links libresolv for ns_initparse.
find_library(SPF_FUZZ_RESOLV resolv REQUIRED)
add_library(fuzz_spf_dns_lib STATIC ${CMAKE_SOURCE_DIR}/policyd-spf/dns.cpp)
target_include_directories(fuzz_spf_dns_lib PUBLIC ${CMAKE_SOURCE_DIR}/policyd-spf)
target_link_libraries(fuzz_spf_dns_lib PUBLIC ${SPF_FUZZ_RESOLV})
mp_add_fuzzer(fuzz_spf_dns SOURCES spf_dns_fuzz.cpp LIBS fuzz_spf_dns_lib)
