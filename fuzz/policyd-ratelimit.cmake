# policyd-ratelimit: the overrides file parser and the rule logic it feeds
# (key normalisation, `match` patterns), compiled from the program's sources
# because a fuzz build has only the codecs.
mp_add_fuzzer(fuzz_ratelimit_overrides
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/ratelimit_overrides_fuzz.cpp
          ${PROJECT_SOURCE_DIR}/policyd-ratelimit/rule.cpp)
target_include_directories(fuzz_ratelimit_overrides PRIVATE ${PROJECT_SOURCE_DIR}/policyd-ratelimit)
