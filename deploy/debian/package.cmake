# Install layout and the Debian package.
#
# cmake --install (prefix /usr/local unless told otherwise):
#   sbin/                          the programs
#   share/man/man5, man8           the manual pages (docs/man), gzipped
#   share/doc/mailpolicy/          copyright, changelog.Debian.gz
#   share/doc/mailpolicy/examples  example configurations and Postfix snippets
#   etc/mailpolicy/                the example configurations, as configs
#   lib/systemd/system             the units (deploy/systemd; they name
#                                  /usr/sbin and /etc/mailpolicy, i.e. the
#                                  package's layout)
#   lib/tmpfiles.d/mailpolicy.conf the mail store the units expect
#
# cpack -G DEB: one package, "mailpolicy", with prefix /usr; etc/ is moved
# to /etc by move-etc.cmake. Maintainer scripts: postinst creates the system
# users, prerm/postrm stop and clean up; nothing is enabled or started, since
# the daemons are useful only once Redis and Postfix are configured.

set(MAILPOLICY_PROGRAMS policyd-spf policyd-ratelimit policyd-greylist delivery-maildir mta-core
    mta-core-sendmail mta-core-postdrop)
foreach(program ${MAILPOLICY_PROGRAMS})
  if(TARGET ${program})
    install(TARGETS ${program} RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR})
  endif()
endforeach()

# mailq and newaliases are mta-core-sendmail under other names. The
# postdrop helper ships 0755; postinst makes it setgid mtadrop with
# dpkg-statoverride, and links /usr/sbin/sendmail, /usr/bin/mailq and
# /usr/bin/newaliases to these only where no other mail system has them
# (docs/mta-core.md, "Local submission").
if(TARGET mta-core-sendmail)
  install(FILES ${CMAKE_BINARY_DIR}/mta-core/mta-core-mailq ${CMAKE_BINARY_DIR}/mta-core/mta-core-newaliases
          DESTINATION ${CMAKE_INSTALL_SBINDIR})
  # Their manual page is mta-core-sendmail(8).
  file(MAKE_DIRECTORY ${CMAKE_BINARY_DIR}/debian/man-links)
  foreach(alias mta-core-mailq mta-core-newaliases)
    file(CREATE_LINK mta-core-sendmail.8.gz ${CMAKE_BINARY_DIR}/debian/man-links/${alias}.8.gz SYMBOLIC)
    install(FILES ${CMAKE_BINARY_DIR}/debian/man-links/${alias}.8.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)
  endforeach()
endif()

set(deploy ${CMAKE_SOURCE_DIR}/deploy)
file(GLOB example_configs ${deploy}/config/*.json)
install(FILES ${example_configs} ${deploy}/config/vmailbox
        DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
install(FILES ${deploy}/postfix/main.cf RENAME postfix-main.cf
        DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
install(FILES ${deploy}/postfix/master.cf RENAME postfix-master.cf
        DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)

# Configurations. The two that may hold a Redis password are 0640; postinst
# gives them to group mailpolicy, which the daemons run as.
install(FILES ${deploy}/config/policyd-spf.json ${deploy}/config/delivery-maildir.json
              ${deploy}/config/vmailbox
        DESTINATION ${CMAKE_INSTALL_SYSCONFDIR}/mailpolicy)
install(FILES ${deploy}/config/policyd-greylist.json ${deploy}/config/policyd-ratelimit.json
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ
        DESTINATION ${CMAKE_INSTALL_SYSCONFDIR}/mailpolicy)
install(FILES ${deploy}/config/mta-core/main.cf ${deploy}/config/mta-core/master.cf
        DESTINATION ${CMAKE_INSTALL_SYSCONFDIR}/mailpolicy/mta-core)
install(FILES ${deploy}/config/mta-core/main.cf RENAME mta-core-main.cf
        DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)

file(GLOB units ${deploy}/systemd/*.service)
install(FILES ${units} DESTINATION lib/systemd/system)
install(FILES ${CMAKE_CURRENT_LIST_DIR}/tmpfiles.conf RENAME mailpolicy.conf
        DESTINATION lib/tmpfiles.d)

# Debian wants the changelog compressed with gzip -9n (no name, no time).
set(changelog_gz ${CMAKE_BINARY_DIR}/debian/changelog.Debian.gz)
add_custom_command(OUTPUT ${changelog_gz}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/debian
  COMMAND gzip -9nc ${CMAKE_CURRENT_LIST_DIR}/changelog > ${changelog_gz}
  DEPENDS ${CMAKE_CURRENT_LIST_DIR}/changelog)
add_custom_target(debian_changelog ALL DEPENDS ${changelog_gz})
install(FILES ${CMAKE_CURRENT_LIST_DIR}/copyright ${changelog_gz}
        DESTINATION ${CMAKE_INSTALL_DOCDIR})

# The package.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME mailpolicy)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "mailpolicy maintainers <mailpolicy@lists.invalid>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "policy daemons and Maildir delivery for Postfix")
# CPack puts the summary first and indents these lines itself.
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION "Small daemons answering Postfix's SMTP access policy delegation protocol:
policyd-spf (SPF, RFC 7208, on libspf2), policyd-ratelimit (exact rate
limits shared in Redis) and policyd-greylist (greylisting with its state in
Redis), and delivery-maildir, crash-safe Maildir delivery over LMTP.

The units are installed but neither enabled nor started: configure the
daemons in /etc/mailpolicy and Postfix first.")
set(CPACK_DEBIAN_PACKAGE_SECTION mail)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://www.postfix.org/SMTPD_POLICY_README.html")
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "redis-server, postfix, libsasl2-modules")
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_CURRENT_LIST_DIR}/conffiles ${CMAKE_CURRENT_LIST_DIR}/postinst
    ${CMAKE_CURRENT_LIST_DIR}/prerm ${CMAKE_CURRENT_LIST_DIR}/postrm)
set(CPACK_PRE_BUILD_SCRIPTS ${CMAKE_CURRENT_LIST_DIR}/move-etc.cmake)
# Only what install() names goes in; nothing from the source tree.
set(CPACK_SOURCE_IGNORE_FILES "/build.*/;/\\\\.git/")
include(CPack)
