# mta-core's SMTP AUTH codecs: the Dovecot auth protocol (replies from the
# auth server) and the session's base64, compiled alone (no libsasl2, no I/O).
set(mta_sasl_dir ${PROJECT_SOURCE_DIR}/mta-core)
mp_add_fuzzer(fuzz_mta_sasl_dovecot
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/mta_sasl_dovecot_fuzz.cpp ${mta_sasl_dir}/sasl/dovecot_protocol.cpp
          ${mta_sasl_dir}/sasl/base64.cpp
  LIBS Boost::headers)
target_include_directories(fuzz_mta_sasl_dovecot PRIVATE ${mta_sasl_dir})
