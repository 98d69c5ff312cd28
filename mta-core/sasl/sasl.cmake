# SMTP AUTH backends (smtpd_sasl_type cyrus and dovecot), part of mta_core_lib.
target_sources(mta_core_lib PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/sasl.cpp
  ${CMAKE_CURRENT_LIST_DIR}/base64.cpp
  ${CMAKE_CURRENT_LIST_DIR}/cyrus.cpp
  ${CMAKE_CURRENT_LIST_DIR}/dovecot.cpp
  ${CMAKE_CURRENT_LIST_DIR}/dovecot_protocol.cpp)
target_link_libraries(mta_core_lib PUBLIC PkgConfig::LIBSASL2)
# Coroutine-heavy: the same g++ 12 false positive as session.cpp.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  set_source_files_properties(${CMAKE_CURRENT_LIST_DIR}/cyrus.cpp ${CMAKE_CURRENT_LIST_DIR}/dovecot.cpp
    PROPERTIES COMPILE_OPTIONS -Wno-mismatched-new-delete)
endif()
