-- wrk script: GET /api/v1/wa/lines/{id}, rotating over the line ids in a file (one a line).
--   wrk -H "Authorization: Bearer $KEY" -s bench/get_line.lua http://127.0.0.1:PORT -- ids.txt
-- Used by crates/wagate/examples/bench_lines.rs.

local ids = {}
local i = 0

function init(args)
  for id in io.lines(args[1]) do
    ids[#ids + 1] = id
  end
  -- Each wrk thread has its own Lua state: start them at different places.
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16))
  i = math.random(#ids)
end

function request()
  i = i % #ids + 1
  return wrk.format("GET", "/api/v1/wa/lines/" .. ids[i])
end
