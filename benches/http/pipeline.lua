-- TechEmpower's pipelining script for wrk: each request() call sends
-- `depth` copies of the request in one write (depth: the first argument
-- after `--`, default 1). wrk then counts each reply as a request, and
-- times the batch.
init = function(args)
  local r = {}
  local depth = tonumber(args[1]) or 1
  for i = 1, depth do
    r[i] = wrk.format()
  end
  req = table.concat(r)
end

request = function()
  return req
end
