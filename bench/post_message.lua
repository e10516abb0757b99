-- wrk script: POST /api/v1/wa/lines/{id}/messages, rotating over the line ids in a file (one
-- a line), so no line reaches its daily limit (250 for a line in its first 3 days): spread
-- over 10,000 lines, 60,000 messages are 6 per line.
--   wrk -H "Authorization: Bearer $KEY" -s bench/post_message.lua http://127.0.0.1:PORT -- ids.txt
-- Used by crates/wagate/examples/bench_lines.rs, which also checks that wrk saw no non-2xx
-- answer (a 429 is not a success).

local ids = {}
local i = 0

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"to":"+447700900123","text":"Your order has shipped."}'

function init(args)
  for id in io.lines(args[1]) do
    ids[#ids + 1] = id
  end
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16))
  i = math.random(#ids)
end

function request()
  i = i % #ids + 1
  return wrk.format(nil, "/api/v1/wa/lines/" .. ids[i] .. "/messages")
end
