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
# Exit 0: success; 1: permanent failure; 2: transient failure; 3: the model store is full; 4: the model needs a
# newer Ollama (the reason is written to $reason_file; for 3, the model's size on its second line).
pull_once() {
    { curl -sS -N --connect-timeout 10 -X POST -H 'Content-Type: application/json' --data "$body" \
        -w '\n__HTTP_STATUS__%{http_code}\n' "$url/api/pull" 2>&1; echo "__CURL_EXIT__$?"; } |
    awk -v model="$model" -v reason_file="$reason_file" '
        function field(name,    rest) {
            if (!match($0, "\"" name "\"[ \t]*:[ \t]*")) return ""
            rest = substr($0, RSTART + RLENGTH)
            if (substr(rest, 1, 1) == "\"") return json_string(substr(rest, 2))
            match(rest, /^[0-9]+/)
            return substr(rest, 1, RLENGTH)
        }
        # The rest of a JSON string up to its closing quote, escapes decoded: registry errors quote JSON
        # bodies (\"), and Go escapes <, > and & as \u003c, \u003e, \u0026.
        function json_string(text,    out, i, c, code) {
            out = ""
            for (i = 1; i <= length(text); i++) {
                c = substr(text, i, 1)
                if (c == "\"") return out
                if (c == "\\") {
                    c = substr(text, ++i, 1)
                    if (c == "n" || c == "t" || c == "r") c = " "
                    else if (c == "u") {
                        code = tolower(substr(text, i + 1, 4)); i += 4
                        c = code == "003c" ? "<" : code == "003e" ? ">" : code == "0026" ? "\\&" : code == "0027" ? "\047" : "?"
                    }
                }
                out = out c
            }
            return out
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
            # 412 "requires a newer version of Ollama" (the registry, server/images.go@v0.32.15:1309-1346) and
            # "requires MLX support" (images.go@v0.32.15:1030): no retry helps, a newer Ollama does
            if (failure ~ /: 412:|requires a newer version of Ollama|requires MLX support/) exit 4
            if (failure ~ /file does not exist|invalid model name|: 4[0-9][0-9]:/ || (http >= 400 && http < 500))
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
    if [ "$result" -eq 4 ]; then
        fix="raise ollama_version (this model needs a newer Ollama than the one installed) and run the deploy again"
    elif [ "$result" -eq 1 ]; then
        fix="check the model name in ollama_models against ollama.com/library"
    else
        reason="$reason (after $((attempt + 1)) attempts)"
        fix="check that the Ollama server reaches its registry, then run the deploy again"
    fi
    echo "$host: ollama_models: pulling $model from $url failed: $reason; fix: $fix" >&2
    exit 1
done

colon='[[:space:]]*:[[:space:]]*'
if [ -n "$pin" ]; then
    served=$(curl -sS "$url/api/tags" | grep -o "\"name\"$colon\"$model\"[^}]*\"digest\"$colon\"[0-9a-f]*\"" |
        sed -n 's/.*"digest"[[:space:]]*:[[:space:]]*"\([0-9a-f]*\)"$/\1/p')
    if [ "$served" != "$pin" ]; then
        # From 0.19.0 the server stores the manifest byte for byte as served (commit 3824e38); up to 0.18 it
        # re-serialised it, so a digest recorded there differs from today's for the very same model.
        echo "$host: ollama_models: $model@sha256:$pin is pinned but the server lists sha256:${served:-none} after" \
            "the pull; either the registry published another manifest, or the pin was recorded on Ollama 0.18 or" \
            "older, whose re-serialised manifests have other digests than 0.19 and later store; fix: check the" \
            "model, then re-pin to $model@sha256:${served:-<digest from ollama list>} (or drop the pin to follow" \
            "the tag)" >&2
        exit 1
    fi
fi
