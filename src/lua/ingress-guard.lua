-- meshfork ingress guard: Envoy HTTP Lua filter (LuaJIT) on ingress gateways (context GATEWAY).
-- Requests from outside must not choose a sandbox: unless the request carries a valid preview
-- credential, remove every member that any downstream propagator could read as a routing key
-- (see `strip` below) from the list headers that propagators read into baggage (LISTS), and
-- remove the routing-key headers entirely: meshfork.headers and, for every key name, the Jaeger
-- `uberctx-<key>` and OpenTracing `ot-baggage-<key>` forms (always: OpenTelemetry's Jaeger and
-- OT propagators turn them into baggage whether or not the mesh routes on them). The credential
-- header itself is always removed. Other members stay untouched and in order.
-- Header names need no case handling: Envoy keeps header names lower-cased (HTTP/2 and HTTP/3
-- require it; for HTTP/1.1 "Envoy will normalize the header keys to be all lowercase", Envoy docs
-- "HTTP/1.1 Header Casing"; a preserve-case formatter only changes how names are written out),
-- so removing `uberctx-k` removes `Uberctx-K` as received too.
-- `meshfork` (keyNames, headers, tokenSha256, tokenHeader) is defined by the generated prelude
-- (src/lua/index.ts). Design, credential choice and references: docs/adr/0003-lua-filters.md.
local bit = require("bit")
local band, bor, bxor, bnot, ror, rshift, tobit, tohex =
  bit.band, bit.bor, bit.bxor, bit.bnot, bit.ror, bit.rshift, bit.tobit, bit.tohex
local find, sub, byte, char, rep, concat = string.find, string.sub, string.byte, string.char, string.rep, table.concat
local lower, gsub = string.lower, string.gsub
local MAX_TOKEN_BYTES = 512
local MAX_DECODES = 4

-- SHA-256 (FIPS 180-4) over LuaJIT's 32-bit `bit` ops; Envoy's Lua API offers no digest function.
local K = {
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
}

local function sha256hex(msg)
  local len = #msg
  msg = msg .. "\128" .. rep("\0", (55 - len) % 64)
  local bits = len * 8
  for s = 56, 0, -8 do msg = msg .. char(math.floor(bits / 2 ^ s) % 256) end
  local h = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 }
  local w = {}
  for blk = 1, #msg, 64 do
    for t = 1, 16 do
      local a, b, c, d = byte(msg, blk + t * 4 - 4, blk + t * 4 - 1)
      w[t] = tobit(a * 16777216 + b * 65536 + c * 256 + d)
    end
    for t = 17, 64 do
      local x, y = w[t - 15], w[t - 2]
      local s0 = bxor(ror(x, 7), ror(x, 18), rshift(x, 3))
      local s1 = bxor(ror(y, 17), ror(y, 19), rshift(y, 10))
      w[t] = tobit(w[t - 16] + s0 + w[t - 7] + s1)
    end
    local a, b, c, d, e, f, g, hh = h[1], h[2], h[3], h[4], h[5], h[6], h[7], h[8]
    for t = 1, 64 do
      local t1 = hh + bxor(ror(e, 6), ror(e, 11), ror(e, 25)) + bxor(band(e, f), band(bnot(e), g)) + K[t] + w[t]
      local t2 = bxor(ror(a, 2), ror(a, 13), ror(a, 22)) + bxor(band(a, b), band(a, c), band(b, c))
      hh, g, f, e, d, c, b, a = g, f, e, tobit(d + t1), c, b, a, tobit(t1 + t2)
    end
    h[1], h[2], h[3], h[4] = tobit(h[1] + a), tobit(h[2] + b), tobit(h[3] + c), tobit(h[4] + d)
    h[5], h[6], h[7], h[8] = tobit(h[5] + e), tobit(h[6] + f), tobit(h[7] + g), tobit(h[8] + hh)
  end
  for i = 1, 8 do h[i] = tohex(h[i]) end
  return concat(h)
end

local function values(headers, name)
  local out = {}
  if headers.getNumValues then -- one value per repeated header line (envoyproxy/envoy#18177)
    for i = 0, headers:getNumValues(name) - 1 do out[#out + 1] = headers:getAtIndex(name, i) end
  else
    out[1] = headers:get(name) -- older Envoy: all lines joined with ','
  end
  return out
end

-- True for a byte that some propagator trims off a key or that is not part of any HTTP token:
-- controls, space, DEL, `+` (form decoders read it as a space) and every byte >= 0x80. That
-- covers every character JavaScript's String.prototype.trim removes (OpenTelemetry JS trims keys
-- with it): \t \n \v \f \r space, U+00A0 (UTF-8 C2 A0; a raw A0 byte reads as U+00A0 in Node's
-- latin1 header strings), U+1680, U+2000-U+200A, U+2028, U+2029, U+202F, U+205F, U+3000,
-- U+FEFF (all UTF-8 bytes >= 0x80), and Go's unicode.IsSpace (adds U+0085) and Java's trim
-- (every byte <= 0x20).
local function junk(c)
  return c <= 32 or c >= 127 or c == 43
end

local function hexByte(h)
  return char(tonumber(h, 16))
end

-- The member key as a downstream propagator could end up reading it: junk trimmed off both ends,
-- ASCII lower-cased, percent-escapes decoded (OpenTelemetry JS decodes baggage keys with
-- decodeURIComponent), repeated until nothing changes. nil when it still changes after
-- MAX_DECODES decodings: such a key is treated as a routing key (fail closed).
local function normalised(key)
  for _ = 1, MAX_DECODES do
    local i, k = 1, #key
    while i <= k and junk(byte(key, i)) do i = i + 1 end
    while k >= i and junk(byte(key, k)) do k = k - 1 end
    key = lower(sub(key, i, k))
    if not find(key, "%", 1, true) then return key end
    local decoded = gsub(key, "%%(%x%x)", hexByte)
    if decoded == key then return key end
    key = decoded
  end
  return nil
end

-- Whether a normalised key could become a routing key: it contains a key name anywhere. A key
-- that merely equals a name is the plain case; one that only contains it (`x;KEY`, `KEY=k;` from
-- `KEY%3Dk%3B`, `KEYx`) turns into a routing member wherever a propagator splits or writes keys
-- differently from W3C baggage (a decoded key written back raw gives `KEY=k;=v`, which the
-- VirtualService regex accepts), so it goes too.
local function routingKey(key)
  for name in pairs(meshfork.keyNames) do
    if find(key, name, 1, true) then return true end
  end
  return false
end

-- Returns `line` without the list members whose key could be read as a routing key, and whether
-- any was removed. The key is the member's text before its first '=' (properties after ';'
-- included: Jaeger clients split `jaeger-baggage` members on '=' only), normalised as above: a
-- superset of what the VirtualService regexes (`(.*,)?[ \t]*KEY[ \t]*=...`), the SDK (raw key
-- text) and the propagators accept, so nothing that routes survives here or after any later
-- hop. Everything else, including empty or malformed members, is kept byte for byte.
local function strip(line)
  local kept, removed, pos = {}, false, 1
  while pos <= #line + 1 do
    local comma = find(line, ",", pos, true) or #line + 1
    local e = find(line, "=", pos, true) or comma
    if e > comma then e = comma end
    local key = normalised(sub(line, pos, e - 1))
    if key == nil or routingKey(key) then
      removed = true
    else
      kept[#kept + 1] = sub(line, pos, comma - 1)
    end
    pos = comma + 1
  end
  return concat(kept, ","), removed
end

local function stripList(headers, name)
  local lines, changed = values(headers, name), false
  for n = 1, #lines do
    local line, removed = strip(lines[n])
    if removed then lines[n], changed = line, true end
  end
  if not changed then return false end
  headers:remove(name)
  for n = 1, #lines do
    if find(lines[n], "[^ \t,]") then headers:add(name, lines[n]) end
  end
  return true
end

-- Headers whose comma-separated `key=value[;properties]` members propagators read into baggage:
-- - `baggage` (W3C Baggage) and `tracestate` (W3C Trace Context);
-- - `jaeger-baggage`: Jaeger's ad-hoc baggage header (`k1=v1, k2=v2`), read by the Jaeger
--   clients (jaeger-client-go `JaegerBaggageHeader`, jaeger-client-java, -node, -cpp) and by
--   OpenTelemetry Java's JaegerPropagator (`BAGGAGE_HEADER = "jaeger-baggage"`, members split on
--   `\s*,\s*`, key and value on `\s*=\s*`) and OpenTelemetry Swift's JaegerBaggagePropagator;
-- - `correlation-context`: the W3C Correlation Context draft that became Baggage
--   (w3c/correlation-context HTTP_HEADER_FORMAT.md: `name1=value1[;properties1],...`, names
--   url-encoded, spaces around them ignored), still read by .NET (`Correlation-Context`,
--   System.Diagnostics.Activity baggage) and by early OpenTelemetry SDKs.
local LISTS = { "baggage", "tracestate", "jaeger-baggage", "correlation-context" }

-- Every header removed wholesale: the configured ones and both legacy forms of every key name
-- (Jaeger `uberctx-<key>`, Jaeger "Propagation Format"; OpenTracing `ot-baggage-<key>`).
local HEADERS = {}
for _, name in ipairs(meshfork.headers) do HEADERS[#HEADERS + 1] = name end
for key in pairs(meshfork.keyNames) do
  HEADERS[#HEADERS + 1] = "uberctx-" .. key
  HEADERS[#HEADERS + 1] = "ot-baggage-" .. key
end

local function guard(handle, headers)
  local tokens = values(headers, meshfork.tokenHeader)
  if #tokens > 0 then
    headers:remove(meshfork.tokenHeader) -- never forwarded, valid or not
    for _, token in ipairs(tokens) do
      if #token <= MAX_TOKEN_BYTES and meshfork.tokenSha256[sha256hex(token)] then return end
    end
  end
  local stripped = false
  for _, name in ipairs(LISTS) do stripped = stripList(headers, name) or stripped end
  for _, name in ipairs(HEADERS) do
    if headers:get(name) ~= nil then
      headers:remove(name)
      stripped = true
    end
  end
  if stripped then handle:logDebug("meshfork: removed routing keys from an unauthenticated request") end
end

function envoy_on_request(handle)
  local headers = handle:headers()
  local ok, err = pcall(guard, handle, headers)
  if not ok then
    -- Envoy lets a request through when its Lua script fails (envoyproxy/envoy#14980), so fail
    -- closed here: drop every routing-key carrier wholesale.
    headers:remove(meshfork.tokenHeader)
    for _, name in ipairs(LISTS) do headers:remove(name) end
    for _, name in ipairs(HEADERS) do headers:remove(name) end
    handle:logErr("meshfork ingress guard failed, removed every routing-key carrier: " .. tostring(err))
  end
end
