-- A Lua string as a JSON string literal (control, quote, backslash and non-ASCII bytes escaped
-- as \u00XX, one per byte), for the test drivers' output lines.
return function(s)
  return '"' .. s:gsub('[%c"\\\128-\255]', function(c)
    if c == '"' then return '\\"' elseif c == '\\' then return '\\\\' end
    return string.format('\\u%04x', c:byte())
  end) .. '"'
end
