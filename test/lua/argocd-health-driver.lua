-- Runs an Argo CD resource health script the way Argo CD does (util/lua/lua.go, runLua): the
-- resource in the global `obj`, the script run as a chunk, its returned table the health. Only
-- what Argo CD opens without useOpenLibs is reachable: the base library, `table`, `package` and a
-- safe `os`; no `string` library, and no string methods (gopher-lua sets no string metatable then).
-- Usage: luajit argocd-health-driver.lua <script.lua> <object.lua>
--   object.lua returns the resource as a Lua table (JSON null members left out).
-- Prints {"status":...,"message":...} (message omitted when nil), or {"error":...}.
local scriptPath, objectPath = arg[1], arg[2]
local object = dofile(objectPath)

local json = dofile((arg[0]:match('^(.*)/') or '.') .. '/json-string.lua')

local env = {}
for _, name in ipairs({ 'assert', 'error', 'ipairs', 'next', 'pairs', 'pcall', 'rawequal', 'rawget', 'rawset',
  'select', 'tonumber', 'tostring', 'type', 'unpack', 'xpcall', 'getmetatable', 'setmetatable', '_VERSION' }) do
  env[name] = _G[name]
end
env.table = table
env.os = { time = os.time, date = os.date, clock = os.clock }
env._G = env
env.obj = object

local chunk, loadError = loadfile(scriptPath)
if chunk == nil then
  io.write('{"error":' .. json(loadError) .. '}\n')
  return
end
setfenv(chunk, env)
-- No string methods while the script runs (`("x"):sub(1)` fails as in Argo CD).
local stringMeta = getmetatable('')
local stringIndex = stringMeta.__index
stringMeta.__index = nil
local ok, result = pcall(chunk)
stringMeta.__index = stringIndex
if not ok then
  io.write('{"error":' .. json(tostring(result)) .. '}\n')
elseif type(result) ~= 'table' then
  io.write('{"error":' .. json('the script returned ' .. type(result) .. ', not a table') .. '}\n')
else
  local out = '{"status":' .. json(tostring(result.status))
  if result.message ~= nil then out = out .. ',"message":' .. json(tostring(result.message)) end
  io.write(out .. '}\n')
end
