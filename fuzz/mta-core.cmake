# mta-core's configuration readers and lookup table parsers. Fuzz builds have
# only the codecs, so each target compiles the Boost-free mta-core sources it
# needs directly.
set(mta_dir ${PROJECT_SOURCE_DIR}/mta-core)
set(mta_config_sources ${mta_dir}/config/logical_lines.cpp ${mta_dir}/config/main_cf.cpp
  ${mta_dir}/config/master_cf.cpp ${mta_dir}/config/list.cpp ${mta_dir}/config/params.cpp
  ${mta_dir}/config/settings.cpp)

# main.cf: parse, expand every parameter, validate, print as postconf -n.
mp_add_fuzzer(fuzz_mta_main_cf SOURCES ${CMAKE_CURRENT_LIST_DIR}/mta_main_cf_fuzz.cpp ${mta_config_sources})
target_include_directories(fuzz_mta_main_cf PRIVATE ${mta_dir})

# master.cf: parse, then settings for every service.
mp_add_fuzzer(fuzz_mta_master_cf SOURCES ${CMAKE_CURRENT_LIST_DIR}/mta_master_cf_fuzz.cpp ${mta_config_sources})
target_include_directories(fuzz_mta_master_cf PRIVATE ${mta_dir})

# Postfix list syntax: split_list, parse_group, split_nameval, parse_time.
mp_add_fuzzer(fuzz_mta_list SOURCES ${CMAKE_CURRENT_LIST_DIR}/mta_list_fuzz.cpp ${mta_config_sources})
target_include_directories(fuzz_mta_list PRIVATE ${mta_dir})

# Table sources (texthash/aliases, pcre, regexp, cidr, inline) and lookups
# in access(5) search order.
find_package(PkgConfig REQUIRED)
pkg_check_modules(PCRE2 REQUIRED IMPORTED_TARGET libpcre2-8)
mp_add_fuzzer(fuzz_mta_tables SOURCES ${CMAKE_CURRENT_LIST_DIR}/mta_tables_fuzz.cpp
  ${mta_dir}/tables/tables.cpp ${mta_config_sources} LIBS PkgConfig::PCRE2)
target_include_directories(fuzz_mta_tables PRIVATE ${mta_dir})

# Queue files (read back after a crash): the envelope parser, and a parsed
# envelope written again must parse to the same thing.
mp_add_fuzzer(fuzz_mta_queue_file SOURCES ${CMAKE_CURRENT_LIST_DIR}/mta_queue_file_fuzz.cpp
  ${mta_dir}/queue/queue_file.cpp)
target_include_directories(fuzz_mta_queue_file PRIVATE ${mta_dir})

# Message header helpers: field lookups and header_size_limit truncation.
mp_add_fuzzer(fuzz_mta_message_header SOURCES ${CMAKE_CURRENT_LIST_DIR}/mta_message_header_fuzz.cpp
  ${mta_dir}/message_header.cpp)
target_include_directories(fuzz_mta_message_header PRIVATE ${mta_dir})

# Maildrop files (written by unprivileged users, read by pickup): the parser,
# and what parses written again parses to the same message.
mp_add_fuzzer(fuzz_mta_maildrop_file SOURCES ${CMAKE_CURRENT_LIST_DIR}/mta_maildrop_file_fuzz.cpp
  ${mta_dir}/queue/maildrop_file.cpp ${mta_dir}/queue/queue_file.cpp LIBS proto_smtp)
target_include_directories(fuzz_mta_maildrop_file PRIVATE ${mta_dir})

# The sendmail command's standard input: line ends, the lone dot, the size
# limit, and -t's address lists.
mp_add_fuzzer(fuzz_mta_sendmail_input SOURCES ${CMAKE_CURRENT_LIST_DIR}/mta_sendmail_input_fuzz.cpp
  ${mta_dir}/sendmail/submission.cpp)
target_include_directories(fuzz_mta_sendmail_input PRIVATE ${mta_dir})

# The message as milters edit it: header fields, body, and edits that can
# never start a new header field.
mp_add_fuzzer(fuzz_mta_milter_message SOURCES ${CMAKE_CURRENT_LIST_DIR}/mta_milter_message_fuzz.cpp
  ${mta_dir}/milter/message_edit.cpp)
target_include_directories(fuzz_mta_milter_message PRIVATE ${mta_dir})

# Deferral notes (defer/ID, what `queue list` shows): parse, write, parse again.
mp_add_fuzzer(fuzz_mta_defer_info SOURCES ${CMAKE_CURRENT_LIST_DIR}/mta_defer_info_fuzz.cpp
  ${mta_dir}/queue/defer_info.cpp ${mta_dir}/queue/queue_file.cpp)
target_include_directories(fuzz_mta_defer_info PRIVATE ${mta_dir})
