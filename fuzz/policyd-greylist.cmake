# policyd-greylist's own parsers. Fuzz builds have only proto_codec, so each
# target compiles the I/O-free greylist sources it needs directly.
set(greylist_dir ${PROJECT_SOURCE_DIR}/policyd-greylist)

# Sender normalisation (BATV, SRS, VERP) and the dynamic-name test of the
# pool-aware client key.
mp_add_fuzzer(fuzz_greylist_sender SOURCES greylist_sender_fuzz.cpp ${greylist_dir}/sender.cpp)
target_include_directories(fuzz_greylist_sender PRIVATE ${greylist_dir})

# Whitelist files in postgrey's format, client and recipient lists.
mp_add_fuzzer(fuzz_greylist_whitelist SOURCES greylist_whitelist_fuzz.cpp
  ${greylist_dir}/whitelist.cpp ${greylist_dir}/sender.cpp ${greylist_dir}/builtin_lists.cpp)
target_include_directories(fuzz_greylist_whitelist PRIVATE ${greylist_dir})
