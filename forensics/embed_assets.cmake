# Generates a C file holding the HTML report's style and script (audit_html.css, audit_html.js) as
# NUL-terminated strings, for audit_html.c.
# cmake -DSRC_DIR=... -DOUT=... -P embed_assets.cmake
set(body "/* generated from audit_html.css and audit_html.js by embed_assets.cmake: do not edit */\n")
foreach(pair "css;audit_html.css" "js;audit_html.js")
  list(GET pair 0 n)
  list(GET pair 1 f)
  file(READ ${SRC_DIR}/${f} hex HEX)
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," hex "${hex}")
  string(APPEND body "const char audit_html_${n}[] = {${hex}0};\n")
endforeach()
file(WRITE ${OUT}.tmp "${body}")
execute_process(COMMAND ${CMAKE_COMMAND} -E copy_if_different ${OUT}.tmp ${OUT})
