#!/bin/bash
# redis-server under walloc: Debian's redis is linked against jemalloc; the
# preload takes its malloc, calloc, realloc, free and malloc_usable_size
# (redis counts its memory with the latter, so a wrong usable size shows up
# as a wrong used_memory or a heap overrun). The workload loads strings of
# 1 B to 256 KiB, lists, hashes, sets, sorted sets and a stream through
# `redis-cli --pipe`, grows and rewrites them (APPEND, SETRANGE, LTRIM, ...),
# converts small encodings to large ones, runs Lua, drives 20 clients with
# redis-benchmark, deletes and flushes in the background thread (lazyfree:
# blocks allocated by the main thread are freed by another), saves an RDB,
# restarts from it and checks the dataset digest is unchanged.
set -euo pipefail
case ${LD_PRELOAD:-} in *vgpreload*) echo "skipped: not run under valgrind"; exit 77 ;; esac
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/common.sh"
walloc_test_init "$@"

REDIS=/usr/bin/redis-server
require_program "$REDIS" redis-server
require_program /usr/bin/redis-cli redis-tools
require_program /usr/bin/redis-benchmark redis-tools

# The data, as the Redis protocol (deterministic: a fixed LCG).
python3 - "$DATA/load.resp" <<'PY'
import sys
out = open(sys.argv[1], "wb")
def cmd(*args):
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
    out.write(b"".join(parts))
x = 12345
def rnd(n):
    global x
    x = (x * 1103515245 + 12345) % 2147483648
    return (x >> 8) % n
def blob(n, tag):
    unit = (b"%s-%d|" % (tag.encode(), n)) or b"x"
    return (unit * (n // len(unit) + 1))[:n]
for i in range(20000):                       # strings, 1 B .. 256 KiB (a few large)
    n = 1 + rnd(64) if i % 10 else 1 + rnd(4096)
    if i % 997 == 0:
        n = 65536 + rnd(196608)
    cmd("SET", f"s:{i}", blob(n, f"s{i}"))
for i in range(0, 20000, 7):                 # grow some in place (realloc)
    cmd("APPEND", f"s:{i}", blob(1 + rnd(300), "tail"))
for i in range(0, 20000, 11):
    cmd("SETRANGE", f"s:{i}", rnd(100), blob(1 + rnd(50), "patch"))
for i in range(300):                         # lists, small and long
    for j in range(0, 5 + rnd(400), 8):
        cmd("RPUSH", f"l:{i}", *[blob(1 + rnd(80), f"l{i}.{j + k}") for k in range(8)])
    cmd("LTRIM", f"l:{i}", 2, -3)
for i in range(400):                         # hashes: listpack, then hashtable
    fields = []
    for j in range(4 + rnd(300)):
        fields += [f"f{j}", blob(1 + rnd(100 if i % 5 else 2000), f"h{i}.{j}")]
    cmd("HSET", f"h:{i}", *fields)
for i in range(200):                         # sets: intset and hashtable
    if i % 2:
        cmd("SADD", f"set:{i}", *[rnd(100000) for _ in range(5 + rnd(700))])
    else:
        cmd("SADD", f"set:{i}", *[f"m{rnd(5000)}" for _ in range(5 + rnd(700))])
for i in range(200):                         # sorted sets: listpack, then skiplist
    args = []
    for _ in range(3 + rnd(500)):
        args += [rnd(1000000) / 7, f"z{rnd(20000)}"]
    cmd("ZADD", f"z:{i}", *args)
for i in range(3000):                        # a stream
    cmd("XADD", "stream", f"{i + 1}-0", "sensor", i % 17, "value", blob(1 + rnd(60), "v"))
for i in range(0, 20000, 3):                 # free a third of the strings
    cmd("DEL", f"s:{i}")
for i in range(0, 300, 4):
    cmd("DEL", f"l:{i}")
out.close()
PY

cat >"$DATA/query.txt" <<'EOF'
DBSIZE
GET s:1
GET s:20
STRLEN s:997
STRLEN s:1994
GETRANGE s:1001 0 40
OBJECT ENCODING s:8
OBJECT ENCODING l:1
OBJECT ENCODING l:2
OBJECT ENCODING h:5
OBJECT ENCODING h:6
OBJECT ENCODING set:1
OBJECT ENCODING set:2
OBJECT ENCODING z:7
LLEN l:7
LRANGE l:7 0 5
LINDEX l:9 -1
HLEN h:12
HGET h:12 f3
HSTRLEN h:15 f2
SCARD set:5
SCARD set:6
SINTERCARD 2 set:1 set:3
SUNIONSTORE u set:2 set:4 set:6
SCARD u
SORT set:3 LIMIT 0 10
SORT set:4 ALPHA LIMIT 0 10
ZCARD z:3
ZRANGE z:3 0 9 WITHSCORES
ZRANGEBYSCORE z:8 1000 40000 LIMIT 0 5
ZUNIONSTORE zu 3 z:1 z:2 z:3 WEIGHTS 1 2 3
ZRANGE zu -5 -1 WITHSCORES
XLEN stream
XRANGE stream 1500-0 1502-0
XREVRANGE stream + - COUNT 2
BITCOUNT s:5
BITOP XOR bx s:4 s:5 s:7
GET bx
EVAL "local t = {} for i = 1, 20000 do t[i] = string.rep('x', i % 97) end local n = 0 for i = 1, #t do n = n + #t[i] end return n" 0
EVAL "local s = 0 for i = 1, 300 do s = s + redis.call('HLEN', 'h:' .. i) end return s" 0
EVAL "local a = {} for i = 1, 2000 do a[#a + 1] = redis.call('GET', 's:' .. (i * 7 + 1)) or '' end return #table.concat(a)" 0
EOF

cat >"$DATA/job.sh" <<'EOF'
# Run by `step` (so under walloc in the walloc run): redis-server, redis-cli
# and redis-benchmark all inherit LD_PRELOAD.
set -eu
data=$1
sock=$PWD/redis.sock
server() {
  rm -f "$sock"
  redis-server --port 0 --unixsocket "$sock" --dir "$PWD" --dbfilename dump.rdb \
    --save "" --appendonly no --enable-debug-command yes --io-threads 2 \
    --lazyfree-lazy-user-del yes --lazyfree-lazy-user-flush yes --daemonize no \
    --logfile "$PWD/server.log" &
  pid=$!
  for _ in $(seq 100); do [ -S "$sock" ] && cli PING >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "redis-server did not start"; cat "$PWD/server.log"; exit 1
}
cli() { redis-cli -s "$sock" "$@"; }
stop() {
  cli SHUTDOWN NOSAVE >/dev/null 2>&1 || true
  wait "$pid"
  echo "server exit status $?"
}
server
echo "== load"
redis-cli -s "$sock" --pipe <"$data/load.resp"
echo "== queries"
cli <"$data/query.txt"
echo "== keys"
cli KEYS 'h:*' | sort | sha256sum
echo "== digest"
digest=$(cli DEBUG DIGEST)
echo "$digest"
echo "== 20 clients in database 1"
redis-benchmark -s "$sock" --dbnum 1 -n 20000 -c 20 -P 4 -r 5000 -d 300 \
  -t set,get,incr,lpush,rpop,sadd,hset,spop,zadd,lrange_100,mset -q >/dev/null
cli -n 1 DBSIZE | awk '{ print ($1 > 0) ? "database 1 filled" : "database 1 empty" }'
cli -n 1 FLUSHDB ASYNC
echo "== background frees"
for i in 0 1 2 3 4 5; do cli DEL "h:$((i * 7 + 1))" "z:$((i * 9 + 1))" "set:$((i * 5 + 2))" "l:$((i * 11 + 1))" >/dev/null; done
cli DBSIZE
cli MEMORY PURGE >/dev/null
after=$(cli DEBUG DIGEST)
echo "== save, restart from the RDB"
cli SAVE
stop
server
[ "$(cli DEBUG DIGEST)" = "$after" ] && echo "digest after restart matches"
cli DBSIZE
cli DEBUG RELOAD
[ "$(cli DEBUG DIGEST)" = "$after" ] && echo "digest after DEBUG RELOAD matches"
# redis counts used_memory with malloc_usable_size: a wrong answer shows here.
cli INFO memory | tr -d '\r' | awk -F: '$1 == "used_memory" { print ($2 + 0 > 10000000 && $2 + 0 < 200000000) ? "used_memory plausible" : "used_memory " $2 }'
cli FLUSHALL ASYNC
cli DBSIZE
stop
grep -E "Assertion|BUG REPORT|crashed|Guru Meditation|Out Of Memory" "$PWD/server.log" || echo "server log clean"
EOF

workload() {
  step redis bash "$DATA/job.sh" "$DATA"
}

assert_walloc_serves "$REDIS" --version
run_and_compare
