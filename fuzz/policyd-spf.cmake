# policyd-spf: our own RFC 7208 parsing (record pre-check and rewrite,
# macro strings and explanation expansion). spf_record.cpp does no I/O.
add_library(fuzz_spf_record_lib STATIC ${CMAKE_SOURCE_DIR}/policyd-spf/spf_record.cpp)
target_include_directories(fuzz_spf_record_lib PUBLIC ${CMAKE_SOURCE_DIR}/policyd-spf)

mp_add_fuzzer(fuzz_spf_record SOURCES spf_record_fuzz.cpp LIBS fuzz_spf_record_lib)
mp_add_fuzzer(fuzz_spf_macro SOURCES spf_macro_fuzz.cpp LIBS fuzz_spf_record_lib)
