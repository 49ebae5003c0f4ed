# Runs a command that must FAIL promptly: passes when the command exits non-zero within MAX_SECONDS and its
# output (stdout and stderr together) matches the regular expression EXPECT.
#   cmake -DCOMMAND="prog|arg|arg" -DEXPECT=regex -DMAX_SECONDS=20 -P expect_job_failure.cmake
# (COMMAND separates its words with '|', since ';' does not survive add_test.)
string(REPLACE "|" ";" command "${COMMAND}")
string(TIMESTAMP start "%s")
execute_process(COMMAND ${command} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err
                TIMEOUT ${MAX_SECONDS})
string(TIMESTAMP stop "%s")
math(EXPR seconds "${stop} - ${start}")
message("exit status: ${rc}; ${seconds} s\n--- stdout\n${out}--- stderr\n${err}---")
if("${rc}" STREQUAL "0")
  message(FATAL_ERROR "the job succeeded, but it should have failed")
endif()
if(NOT "${rc}" MATCHES "^[0-9]+$" OR seconds GREATER MAX_SECONDS)
  message(FATAL_ERROR "the job did not end by itself within ${MAX_SECONDS} s (${rc})")
endif()
if(NOT "${out}${err}" MATCHES "${EXPECT}")
  message(FATAL_ERROR "the output does not contain the expected message /${EXPECT}/")
endif()
message("ok: failed with status ${rc} after ${seconds} s with the expected message")
