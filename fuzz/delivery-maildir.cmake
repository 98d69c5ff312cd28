# delivery-maildir's own parsers and the address-to-path mapping. Fuzz builds
# have only the codecs, so each target compiles the Boost-free sources it
# needs directly.
set(delivery_dir ${PROJECT_SOURCE_DIR}/delivery-maildir)

# Recipient address -> Maildir path: no address may name a path outside its
# mailbox, whatever the local part, extension or domain.
mp_add_fuzzer(fuzz_delivery_address
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/delivery_address_fuzz.cpp ${delivery_dir}/delivery.cpp
          ${delivery_dir}/maildir.cpp ${delivery_dir}/recipient.cpp
  LIBS proto_smtp proto_fs nlohmann_json::nlohmann_json)
target_include_directories(fuzz_delivery_address PRIVATE ${delivery_dir})

# The virtual_mailboxes file.
mp_add_fuzzer(fuzz_delivery_mailbox_list
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/delivery_mailbox_list_fuzz.cpp
          ${delivery_dir}/mailbox_list.cpp ${delivery_dir}/recipient.cpp
  LIBS proto_smtp)
target_include_directories(fuzz_delivery_mailbox_list PRIVATE ${delivery_dir})

# Maildir++ maildirsize files (written by other programs, read before each delivery).
mp_add_fuzzer(fuzz_delivery_maildirsize
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/delivery_maildirsize_fuzz.cpp ${delivery_dir}/maildir.cpp)
target_include_directories(fuzz_delivery_maildirsize PRIVATE ${delivery_dir})
