-- meshfork fork affinity: Envoy HTTP Lua filter (LuaJIT) on a fork's sidecar, SIDECAR_OUTBOUND.
-- Adds the W3C baggage member `<keyName>=<routingKey>` to outbound requests that carry no member
-- with that key, so the fork's own calls stay in its sandbox even when the app drops the context.
-- `meshfork` (keyName, routingKey) is defined by the generated prelude (src/lua/index.ts).
-- Design and Envoy API references: docs/adr/0003-lua-filters.md.
local KEY = meshfork.keyName
local MEMBER = KEY .. "=" .. meshfork.routingKey
local MAX_BYTES, MAX_MEMBERS = 8192, 64 -- W3C baggage: what every hop must propagate
local find, sub, byte = string.find, string.sub, string.byte

-- Scans one baggage line; returns (has a member keyed KEY, number of non-empty members).
-- A member is `OWS key OWS "=" ...`; `foo=1;KEY=v` is a property of foo, `xKEY=v` another key.
local function scan(line)
  local pos, n = 1, 0
  while pos <= #line + 1 do
    local comma = find(line, ",", pos, true) or #line + 1
    local i, j = pos, comma - 1
    while i <= j and (byte(line, i) == 32 or byte(line, i) == 9) do i = i + 1 end
    if i <= j then
      n = n + 1
      local eq = find(line, "[=;,]", i)
      if eq and eq < comma and byte(line, eq) == 61 then -- '='
        local k = eq - 1
        while k >= i and (byte(line, k) == 32 or byte(line, k) == 9) do k = k - 1 end
        if sub(line, i, k) == KEY then return true, n end
      end
    end
    pos = comma + 1
  end
  return false, n
end

function envoy_on_request(handle)
  local headers = handle:headers()
  local lines = {}
  if headers.getNumValues then -- one value per repeated header line (envoyproxy/envoy#18177)
    for i = 0, headers:getNumValues("baggage") - 1 do lines[#lines + 1] = headers:getAtIndex("baggage", i) end
  else
    lines[1] = headers:get("baggage") -- older Envoy: all lines joined with ','
  end
  local members = 0
  for _, line in ipairs(lines) do
    local found, n = scan(line)
    if found then return end -- the request already names a sandbox (or the baseline): keep it
    members = members + n
  end
  local value = MEMBER
  if members > 0 then value = table.concat(lines, ",") .. "," .. MEMBER end
  if #value > MAX_BYTES or members + 1 > MAX_MEMBERS then return end
  -- Modifying request headers makes Envoy's Lua filter clear the route cache (envoyproxy/envoy#2093),
  -- so the router re-evaluates the VirtualService match with the new member.
  if #lines > 0 then headers:remove("baggage") end
  headers:add("baggage", value)
end
