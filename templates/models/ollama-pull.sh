#!/bin/sh
# Pull one model through the Ollama server's streaming /api/pull, for ollama-claude.
#
# usage: ollama-pull <host name> <server url> <model name:tag> <retries> [<pinned manifest sha256>]
#
# Prints a layer's start and end, and between them at most one line every 5 s
# ("<model> pulling 4f751f9252fc 42% (27 MB of 64 MB)"), so the output of a fleet stays readable.
# The server answers 200 even when a streamed pull fails, so errors are read from the {"error": ...} lines.
# Transient failures (connection, timeouts, 5xx, cut streams) are retried with backoff;
# a model the registry does not have fails at once. POSIX sh, curl and awk only: no python on the host.
set -u

host=$1 url=$2 model=$3 retries=$4 pin=${5:-}
body=$(printf '{"model":"%s","stream":true}' "$model")

# Reads curl's NDJSON stream plus two trailer lines (HTTP status, curl exit code).
# Exit 0: success; 1: permanent failure; 2: transient failure; 3: the model store is full (the reason is
# written to $reason_file; for 3, the model's size on its second line).
pull_once() {
    { curl -sS -N --connect-timeout 10 -X POST -H 'Content-Type: application/json' --data "$body" \
        -w '\n__HTTP_STATUS__%{http_code}\n' "$url/api/pull" 2>&1; echo "__CURL_EXIT__$?"; } |
    awk -v model="$model" -v reason_file="$reason_file" '
        function field(name,    rest) {
            if (!match($0, "\"" name "\"[ \t]*:[ \t]*")) return ""
            rest = substr($0, RSTART + RLENGTH)
            if (substr(rest, 1, 1) == "\"") {
                rest = substr(rest, 2)
                # JSON strings here carry no escaped quotes worth keeping: stop at the closing quote
                return substr(rest, 1, index(rest, "\"") - 1)
            }
            match(rest, /^[0-9]+/)
            return substr(rest, 1, RLENGTH)
        }
        function now(    previous) { srand(); previous = srand(); return previous }  # POSIX: time of day
        function size(bytes) {
            if (bytes >= 1e9) return sprintf("%.1f GB", bytes / 1e9)
            if (bytes >= 1e6) return sprintf("%d MB", bytes / 1e6)
            return sprintf("%d kB", bytes / 1e3)
        }
        /^__HTTP_STATUS__/ { http = substr($0, 16) + 0; next }
        /^__CURL_EXIT__/ { curl_exit = substr($0, 14) + 0; next }
        /^\{/ {
            error_text = field("error")
            if (error_text != "") { failure = error_text; next }
            status = field("status")
            if (status == "success") { done = 1; print model " pulled"; next }
            total = field("total") + 0; completed = field("completed") + 0
            if (total > 0) layer_size[field("digest")] = total
            finished = total > 0 && completed == total
            if (status != last_status || finished || (total > 0 && now() - last_print >= 5)) {
                if (total > 0)
                    line = sprintf("%s %s %d%% (%s of %s)", model, status, 100 * completed / total,
                                   size(completed), size(total))
                else
                    line = model " " status
                print line; fflush()
                last_status = status; last_print = now()
            }
            next
        }
        NF { other = $0 }
        END {
            if (done) exit 0
            if (failure == "" && other != "") failure = other
            if (failure == "") failure = "the stream ended before success (HTTP " http ", curl exit " curl_exit ")"
            print failure > reason_file
            if (failure ~ /no space left on device/) {
                for (digest in layer_size) needed += layer_size[digest]
                print size(needed) > reason_file
                exit 3
            }
            if (failure ~ /file does not exist|invalid model name|: 40[0-9]:/ || (http >= 400 && http < 500))
                exit 1
            exit 2
        }'
}

reason_file=$(mktemp) || exit 1
trap 'rm -f "$reason_file"' EXIT
attempt=0 delay=${OLLAMA_CLAUDE_PULL_DELAY:-2}  # first backoff in seconds, doubled per retry up to 60
while :; do
    pull_once; result=$?
    [ "$result" -eq 0 ] && break
    reason=$(sed -n 1p "$reason_file")
    if [ "$result" -eq 3 ]; then  # retrying cannot help: name the store (from the server's error) and the size
        store=$(echo "$reason" | sed -n 's|.* \(/.*\)/blobs/.*|\1|p')
        free=$(df -Pk "$store" 2>/dev/null | awk 'NR == 2 { b = $4 * 1024
            if (b >= 1e9) printf "%.1f GB", b / 1e9; else if (b >= 1e6) printf "%d MB", b / 1e6
            else printf "%d kB", b / 1e3 }')
        echo "$host: ollama_models: pulling $model from $url failed: no space left on device in the model store" \
            "$store (${free:-unknown} free, the model needs $(sed -n 2p "$reason_file")); fix: free space there" \
            "or set ollama_models_dir to a larger disk" >&2
        exit 1
    fi
    if [ "$result" -eq 2 ] && [ "$attempt" -lt "$retries" ]; then
        attempt=$((attempt + 1))
        echo "$model: $reason; retry $attempt/$retries in ${delay}s"
        sleep "$delay"
        delay=$((delay * 2)); [ "$delay" -gt 60 ] && delay=60
        continue
    fi
    if [ "$result" -eq 1 ]; then
        fix="check the model name in ollama_models against ollama.com/library"
    else
        reason="$reason (after $((attempt + 1)) attempts)"
        fix="check that the Ollama server reaches its registry, then run the deploy again"
    fi
    echo "$host: ollama_models: pulling $model from $url failed: $reason; fix: $fix" >&2
    exit 1
done

colon='[[:space:]]*:[[:space:]]*'
if [ -n "$pin" ] && ! curl -sS "$url/api/tags" | grep -q "\"name\"$colon\"$model\"[^}]*\"digest\"$colon\"$pin\""; then
    echo "$host: ollama_models: $model@sha256:$pin is pinned but the registry served another manifest;" \
        "fix: update the pinned digest in ollama_models (or drop it to follow the tag)" >&2
    exit 1
fi
