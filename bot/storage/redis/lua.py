"""Lua shared by the Redis store's scripts.

Every script is atomic on the server: a crash of the gateway, or of Redis after the script
(with the AOF), leaves all of it or none. Scripts check before they write, so none stops half
way on an error of ours.
"""

from __future__ import annotations

# An id unique across the store from the shard's counter: ``keys.numbered`` in Lua (ARGV holds
# SHARDS and the shard). ``%d``: tostring would print a large number as 1e+15.
NUMBERED = """
local function numbered(seq_key, shards, shard)
  return string.format('%d', redis.call('INCR', seq_key) * shards + shard)
end
"""

# The conversation's hash and its indexes (by state, by contract) in one step. The contract
# index also holds conversations linked by an identity link: a conversation leaves the old
# contract's set only if its link does not name that contract too.
UPSERT_CONVERSATION = """
local function upsert(conv, link, cid, state, locale, contract, dialog, now, by_state, by_contract)
  local old = redis.call('HMGET', conv, 'state', 'contract')
  if old[1] and old[1] ~= state then redis.call('ZREM', by_state .. old[1], cid) end
  redis.call('ZADD', by_state .. state, now, cid)
  if old[2] and old[2] ~= contract and redis.call('HGET', link, 'contract') ~= old[2] then
    redis.call('SREM', by_contract .. old[2], cid)
  end
  redis.call('HSET', conv, 'state', state, 'locale', locale, 'dialog', dialog, 'updated', now)
  if contract == '' then
    redis.call('HDEL', conv, 'contract')
  else
    redis.call('HSET', conv, 'contract', contract)
    redis.call('SADD', by_contract .. contract, cid)
  end
end
"""

# One transcript line: the stream entry (its id is the line's id), the conversation in the
# "oldest line" index (only if it was not there: the score is its oldest line's time), the
# files the line names in the files index at the line's time (retention keeps them).
ADD_LINE = """
local function add_line(msgs, seq, oldest, files, shards, shard, cid, s, t, b, m, at, file_ids)
  local id = numbered(seq, shards, shard)
  redis.call('XADD', msgs, id .. '-0', 's', s, 't', t, 'b', b, 'm', m, 'a', at)
  redis.call('ZADD', oldest, 'NX', at, cid)
  for file_id in string.gmatch(file_ids, '%S+') do
    redis.call('ZADD', files, 'GT', at, file_id)
  end
  return id
end
"""

# The fields of a stream entry ({f1, v1, f2, v2, ...}) as a table.
ENTRY_FIELDS = """
local function entry_fields(flat)
  local t = {}
  for i = 1, #flat, 2 do t[flat[i]] = flat[i + 1] end
  return t
end
"""
