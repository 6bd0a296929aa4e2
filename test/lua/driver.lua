-- Test driver: runs a meshfork Envoy Lua filter under plain LuaJIT with a minimal stub of
-- Envoy's stream handle and header map (docs: envoyproxy.io .../http_filters/lua_filter).
-- Usage: luajit driver.lua <filter.lua> <request.lua>
--   request.lua returns { headers = { {name, value}, ... }, legacy = bool }
--   legacy = true models an Envoy without getAtIndex/getNumValues (get() joins values with ',').
--   fault = '<method>' makes that header-map method raise a Lua error (tests fail-closed paths).
-- Prints one JSON object per line: {"header":[name,value]} for every header line in order,
-- then {"mutations":n}, any {"log":[level,msg]}, and {"error":msg} if the filter raised.
local scriptPath, requestPath = arg[1], arg[2]
local request = dofile(requestPath)

local json = dofile((arg[0]:match('^(.*)/') or '.') .. '/json-string.lua')

-- Header map: an ordered list of {lower-case name, value} entries, repeated names allowed.
local entries, mutations, logs = {}, 0, {}
for _, h in ipairs(request.headers) do entries[#entries + 1] = { h[1]:lower(), h[2] } end

local function matching(key)
  key = key:lower()
  local out = {}
  for _, e in ipairs(entries) do if e[1] == key then out[#out + 1] = e[2] end end
  return out
end

local function checkString(v, what)
  if type(v) ~= 'string' then error('bad argument: ' .. what .. ' must be a string, got ' .. type(v), 3) end
end

local headers = {}
function headers:get(key)
  checkString(key, 'key')
  local vs = matching(key)
  if #vs == 0 then return nil end
  return table.concat(vs, ',') -- Envoy's getAllOfHeaderAsString
end
function headers:add(key, value)
  checkString(key, 'key'); checkString(value, 'value')
  mutations = mutations + 1
  entries[#entries + 1] = { key:lower(), value }
end
function headers:remove(key)
  checkString(key, 'key')
  mutations = mutations + 1
  key = key:lower()
  local kept = {}
  for _, e in ipairs(entries) do if e[1] ~= key then kept[#kept + 1] = e end end
  entries = kept
end
function headers:replace(key, value)
  checkString(key, 'key'); checkString(value, 'value')
  mutations = mutations + 1
  key = key:lower()
  local kept, done = {}, false
  for _, e in ipairs(entries) do
    if e[1] ~= key then kept[#kept + 1] = e
    elseif not done then kept[#kept + 1] = { key, value }; done = true end
  end
  if not done then kept[#kept + 1] = { key, value } end
  entries = kept
end
if not request.legacy then
  function headers:getAtIndex(key, index)
    checkString(key, 'key')
    if type(index) ~= 'number' then error('bad argument: index must be a number', 2) end
    return matching(key)[index + 1] -- Envoy indexes from 0
  end
  function headers:getNumValues(key)
    checkString(key, 'key')
    return #matching(key)
  end
end

if request.fault then
  headers[request.fault] = function() error('injected fault in ' .. request.fault) end
end

local handle = {}
function handle:headers() return headers end
for _, level in ipairs({ 'Trace', 'Debug', 'Info', 'Warn', 'Err', 'Critical' }) do
  handle['log' .. level] = function(_, msg) logs[#logs + 1] = { level, tostring(msg) } end
end

local ok, err = pcall(function()
  local chunk = assert(loadfile(scriptPath))
  chunk()
  assert(type(envoy_on_request) == 'function', 'script defines no global envoy_on_request')
  envoy_on_request(handle)
end)

for _, e in ipairs(entries) do print('{"header":[' .. json(e[1]) .. ',' .. json(e[2]) .. ']}') end
print('{"mutations":' .. mutations .. '}')
for _, l in ipairs(logs) do print('{"log":[' .. json(l[1]) .. ',' .. json(l[2]) .. ']}') end
if not ok then print('{"error":' .. json(tostring(err)) .. '}') end
