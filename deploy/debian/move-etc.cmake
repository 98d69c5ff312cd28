# CPack runs this after staging the install under the prefix /usr and before
# building the package: the configurations staged as usr/etc/mailpolicy
# belong in /etc/mailpolicy (where the units and conffiles name them).
set(stage "${CPACK_TEMPORARY_DIRECTORY}")
if(EXISTS "${stage}/usr/etc")
  file(RENAME "${stage}/usr/etc" "${stage}/etc")
endif()
