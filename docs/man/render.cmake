# One manual page: docs/man/NAME.SECTION.scd -> roff (NAME.SECTION) and its
# gzip -9n copy (NAME.SECTION.gz, what gets installed, as Debian wants it).
# A line "@include FILE@" is replaced by docs/man/include/FILE, so the
# options every program shares are written once.
#   cmake -DSCDOC=... -DSRC=... -DINCLUDE_DIR=... -DOUT=... -P render.cmake
file(READ "${SRC}" text)
string(REGEX MATCHALL "@include [^@\n]+@" includes "${text}")
foreach(inc IN LISTS includes)
  string(REGEX REPLACE "@include ([^@\n]+)@" "\\1" name "${inc}")
  file(READ "${INCLUDE_DIR}/${name}" body)
  string(STRIP "${body}" body)
  string(REPLACE "${inc}" "${body}" text "${text}")
endforeach()
file(WRITE "${OUT}.scd" "${text}")
execute_process(COMMAND "${SCDOC}" INPUT_FILE "${OUT}.scd" OUTPUT_FILE "${OUT}"
                RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  file(REMOVE "${OUT}")
  message(FATAL_ERROR "scdoc ${SRC}: ${err}")
endif()
execute_process(COMMAND gzip -9nc "${OUT}" OUTPUT_FILE "${OUT}.gz" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "gzip ${OUT} failed")
endif()
