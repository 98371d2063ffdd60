# resilient-templates stage wrapper (POSIX sh; needs only sh, mkfifo, tee, tail, sed, tr, awk, od, date).
# Runs the stage command "$@" and records what happened, in ANY stage image (no Python needed).
#
#   1. Before a retry, waits the in-pod part of the retry delay (linear, custom and jittered
#      schedules; Argo waits the pod-less floor itself: see resilient_templates.lower.retry).
#   2. Runs the command under a soft deadline, streaming its output to the container log and
#      keeping the last RT_TAIL_BYTES of merged stdout+stderr in bounded memory.
#   3. Writes the error-context JSON (an output parameter with default "{}", which Argo collects
#      even from failed pods) and, on failure, a one-line hint to /dev/termination-log, which
#      Argo appends to the node message ({{lastRetry.message}}, {{workflow.failures}}).
#   4. Exits with the command's exit code (124 when the soft deadline fired).
#
# Environment (set by the generated template):
#   RT_STAGE           stage name                      RT_RETRIES   {{retries}} (0 = first attempt)
#   RT_SLEEPS          in-pod wait before retry n, seconds, space-separated (index n-1)
#   RT_JITTER          none|full|equal|decorrelated    RT_BOUNDS    "lo:hi …" delay range per retry
#   RT_FLOOR           seconds Argo already waited natively (subtracted from the drawn delay)
#   RT_BASE, RT_CAP    decorrelated jitter parameters  RT_LAST_MESSAGE {{lastRetry.message}}
#   RT_TIMEOUT         soft deadline of the command, seconds (0 = none); RT_KILL_GRACE (10)
#   RT_TAIL_BYTES      bytes of output kept (16384)    RT_CONTEXT   error-context path
#   RT_MKDIRS          directories to create before the command runs (its output files' dirs)
#   RT_HINTS           lines "signature<TAB>category<TAB>transient<TAB>ERE", first match wins
#   RT_TERMINATION_LOG (/dev/termination-log)          RT_NO_SLEEP  print waits instead (tests)
#
# Never worse than no wrapper: if it cannot set up its capture (read-only /tmp, no mkfifo) it
# runs the command directly. No "$$" anywhere: Kubernetes turns "$$" into "$" in command/args.
# The log tail is redacted for well-known secret shapes before it leaves the pod (the runtime
# redacts thoroughly again); it lands in the Workflow status, a wider audience than pod logs.
rt_ctx=${RT_CONTEXT:-/tmp/rt/error-context.json}
rt_tail_bytes=${RT_TAIL_BYTES:-16384}
rt_retries=${RT_RETRIES:-0}
case $rt_retries in ''|*[!0-9]*) rt_retries=0 ;; esac
rt_attempt=$((rt_retries + 1))

rt_log() { printf 'rt: %s\n' "$*" >&2; }

rt_random() { # rt_random LO HI -> uniform integer in [LO, HI]
	if [ "$2" -le "$1" ]; then echo "$1"; return; fi
	rt_r=$(od -An -N4 -tu4 /dev/urandom 2>/dev/null | tr -d ' \n')
	case $rt_r in ''|*[!0-9]*) # no /dev/urandom: seed with the time AND the pid, not the time alone
		rt_r=$(awk -v p="${PPID:-1}" 'BEGIN { srand(); srand(rand() * 1000003 + p); printf "%d", rand() * 4294967295 }') ;;
	esac
	echo $(($1 + rt_r % ($2 - $1 + 1)))
}

rt_nth() { # rt_nth N WORDS... -> the Nth word (1-based), empty when absent
	rt_n=$1; shift
	[ "$rt_n" -ge 1 ] 2>/dev/null || return 0
	[ "$#" -ge "$rt_n" ] || return 0
	eval "echo \"\${$rt_n}\""
}


rt_redact() { # well-known secret shapes; the runtime's redactor is the thorough one
	LC_ALL=C sed -E \
		-e 's/gh[pousr]_[A-Za-z0-9]{20,}/[REDACTED:github-token]/g' \
		-e 's/github_pat_[A-Za-z0-9_]{20,}/[REDACTED:github-token]/g' \
		-e 's/xox[abprse]-[A-Za-z0-9-]{10,}/[REDACTED:slack-token]/g' \
		-e 's/(AKIA|ASIA)[0-9A-Z]{16}/[REDACTED:aws-access-key-id]/g' \
		-e 's/eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]*/[REDACTED:jwt]/g' \
		-e 's#(://[^/:@[:space:]]+:)[^/@[:space:]]+@#\1[REDACTED:url-password]@#g' \
		-e 's/([Aa]uthorization: *([Bb]earer|[Bb]asic|[Tt]oken) )[^[:space:]]+/\1[REDACTED:authorization-header]/g' \
		-e 's/([Bb]earer )[A-Za-z0-9._~+\/=-]{16,}/\1[REDACTED:bearer-token]/g' \
		-e '/-----BEGIN [A-Z ]*PRIVATE KEY-----/,/-----END [A-Z ]*PRIVATE KEY-----/s/.*/[REDACTED:private-key]/'
}
rt_json_str() { # JSON string body of a file, byte-wise: drop NUL, redact, control chars to '?', escape \ and "
	LC_ALL=C tr -d '\000' <"$1" | rt_redact | LC_ALL=C sed -e 's/[[:cntrl:]]/?/g' -e 's/\\/\\\\/g' -e 's/"/\\"/g' |
		LC_ALL=C awk '{ if (NR > 1) printf "\\n"; printf "%s", $0 }'
}
rt_json_val() { if [ -n "$1" ]; then printf '"%s"' "$1"; else printf null; fi; }
rt_write_context() { # rt_write_context STATUS: the error-context JSON, written atomically
	rt_ok=false
	[ "$1" -eq 0 ] && rt_ok=true
	{
		printf '{"schema":1,"ok":%s,"stage":%s,"attempt":%s,' "$rt_ok" "$(rt_json_val "${RT_STAGE:-}")" "$rt_attempt"
		printf '"exit_code":%s,"signal":%s,"timed_out":%s,' "$1" "$(rt_json_val "$rt_signal")" "$rt_timed_out"
		printf '"started_at":%s,"duration_seconds":%s,"waited_seconds":%s' "${rt_start:-0}" $((${rt_end:-0} - ${rt_start:-0})) "$rt_delay"
		if [ "$rt_ok" = false ]; then
			rt_size=$(wc -c <"$rt_dir/tail" 2>/dev/null | tr -d ' ')
			rt_size=${rt_size:-0}
			printf ',"hint":%s,"log_tail":"' "$(rt_json_val "$rt_hint")"
			[ -f "$rt_dir/tail" ] && rt_json_str "$rt_dir/tail"
			printf '","log_tail_bytes":%s,"log_truncated":%s' "$rt_size" "$([ "$rt_size" -ge "$rt_tail_bytes" ] && echo true || echo false)"
		fi
		printf '}\n'
	} >"$rt_ctx.tmp" 2>/dev/null && mv -f "$rt_ctx.tmp" "$rt_ctx" 2>/dev/null
}

# ---- 0. set up: output directories and the capture; without them run the command plainly --
mkdir -p "$(dirname "$rt_ctx")" ${RT_MKDIRS:-} 2>/dev/null
rt_dir=$(mktemp -d 2>/dev/null) || {
	rt_dir=${TMPDIR:-/tmp}/rt-wrap-$(date +%s)-$(rt_random 0 999999)
	mkdir -p "$rt_dir" 2>/dev/null
}
if ! mkfifo "$rt_dir/out" "$rt_dir/tee" 2>/dev/null; then
	rt_log "cannot set up output capture in $rt_dir: running the command without the wrapper"
	exec "$@"
fi
rt_pid= rt_sleep_pid= rt_terminated= rt_signal= rt_timed_out=false rt_hint= rt_start= rt_end=
trap 'rt_terminated=TERM; kill -TERM $rt_pid $rt_sleep_pid 2>/dev/null' TERM INT HUP

# ---- 1. the in-pod part of the retry delay --------------------------------------------------
rt_delay=0
if [ "$rt_retries" -gt 0 ]; then
	rt_floor=${RT_FLOOR:-0}
	case ${RT_JITTER:-none} in
	none)
		rt_sleep=$(rt_nth "$rt_retries" ${RT_SLEEPS:-})
		rt_sleep=${rt_sleep:-0}
		rt_delay=$((rt_floor + rt_sleep)) ;;
	decorrelated)
		rt_prev=$(printf '%s' "${RT_LAST_MESSAGE:-}" | sed -n 's/.*delay=\([0-9][0-9]*\).*/\1/p')
		rt_prev=${rt_prev:-${RT_BASE:-0}}
		rt_hi=$((rt_prev * 3))
		[ -n "${RT_CAP:-}" ] && [ "$rt_hi" -gt "$RT_CAP" ] && rt_hi=$RT_CAP
		rt_delay=$(rt_random "${RT_BASE:-0}" "$rt_hi")
		rt_sleep=$((rt_delay - rt_floor)) ;;
	*)
		rt_range=$(rt_nth "$rt_retries" ${RT_BOUNDS:-})
		rt_lo=${rt_range%%:*}; rt_hi=${rt_range##*:}
		rt_delay=$(rt_random "${rt_lo:-0}" "${rt_hi:-0}")
		rt_sleep=$((rt_delay - rt_floor)) ;;
	esac
	[ "$rt_sleep" -lt 0 ] && rt_sleep=0
	if [ "$rt_sleep" -gt 0 ]; then
		rt_log "attempt $rt_attempt: waiting ${rt_sleep}s in the pod (delay ${rt_delay}s, ${rt_floor}s of it waited by Argo)"
		if [ -n "${RT_NO_SLEEP:-}" ]; then
			rt_log "sleep $rt_sleep"
		else
			sleep "$rt_sleep" &
			rt_sleep_pid=$!
			wait "$rt_sleep_pid" # a wait, unlike a foreground sleep, is interrupted by the trap
			rt_sleep_pid=
		fi
	fi
fi
if [ -n "$rt_terminated" ]; then # stopped (deadline, node drain) before the command ran
	rt_signal=TERM rt_hint="rt:transient signature=terminated-while-waiting exit=143 signal=TERM delay=$rt_delay"
	printf '%s' "$rt_hint" >"${RT_TERMINATION_LOG:-/dev/termination-log}" 2>/dev/null
	rt_write_context 143
	rm -rf "$rt_dir"
	exit 143
fi

# ---- 2. run the command, stream its output, keep a bounded tail -----------------------------
tail -c "$rt_tail_bytes" <"$rt_dir/tee" >"$rt_dir/tail" &
rt_tail_pid=$!
tee "$rt_dir/tee" <"$rt_dir/out" &
rt_tee_pid=$!

rt_start=$(date +%s)
"$@" >"$rt_dir/out" 2>&1 &
rt_pid=$!

rt_watchdog=
rt_timeout=${RT_TIMEOUT:-0}
case $rt_timeout in ''|*[!0-9]*) rt_timeout=0 ;; esac
if [ "$rt_timeout" -gt 0 ]; then
	( # the watchdog: stops the command at the soft deadline; leaves nothing behind when stopped
		trap 'kill $rt_wd_sleep 2>/dev/null; exit 0' TERM
		sleep "$rt_timeout" &
		rt_wd_sleep=$!
		wait "$rt_wd_sleep"
		: >"$rt_dir/timed-out"
		kill -TERM "$rt_pid" 2>/dev/null
		sleep "${RT_KILL_GRACE:-10}" &
		rt_wd_sleep=$!
		wait "$rt_wd_sleep"
		kill -KILL "$rt_pid" 2>/dev/null
	) </dev/null >/dev/null 2>&1 &
	rt_watchdog=$!
fi

while :; do
	wait "$rt_pid"
	rt_rc=$?
	kill -0 "$rt_pid" 2>/dev/null || break
done
rt_end=$(date +%s)
[ -n "$rt_watchdog" ] && kill "$rt_watchdog" 2>/dev/null
# A daemon the command left behind may hold the output open: give the tail 5s, then stop it.
rt_i=0
while kill -0 "$rt_tee_pid" 2>/dev/null && [ "$rt_i" -lt 50 ]; do sleep 0.1 2>/dev/null || sleep 1; rt_i=$((rt_i + 1)); done
kill "$rt_tee_pid" 2>/dev/null
wait "$rt_tail_pid" 2>/dev/null

[ -f "$rt_dir/timed-out" ] && rt_timed_out=true
if [ "$rt_rc" -gt 128 ] && [ "$rt_rc" -le 192 ]; then
	rt_signal=$(kill -l $((rt_rc - 128)) 2>/dev/null | tr -d ' \n')
fi
rt_status=$rt_rc
[ "$rt_timed_out" = true ] && rt_status=124

# ---- 3. classify (hint), write the error context and the termination message ----------------
if [ "$rt_rc" -ne 0 ] || [ "$rt_timed_out" = true ]; then
	rt_tab=$(printf '\t')
	rt_match=$(printf '%s\n' "${RT_HINTS:-}" | while IFS=$rt_tab read -r rt_name rt_cat rt_trans rt_ere; do
		[ -n "$rt_ere" ] || continue
		if grep -Eq -- "$rt_ere" "$rt_dir/tail" 2>/dev/null; then
			printf '%s\t%s\t%s' "$rt_name" "$rt_cat" "$rt_trans"
			break
		fi
	done)
	if [ -n "$rt_match" ]; then
		rt_name=${rt_match%%"$rt_tab"*}
		rt_rest=${rt_match#*"$rt_tab"}
		rt_cat=${rt_rest%%"$rt_tab"*}
		rt_trans=${rt_rest#*"$rt_tab"}
	elif [ "$rt_timed_out" = true ]; then
		rt_name=attempt-timeout rt_cat= rt_trans=true
	elif [ "$rt_rc" -eq 75 ]; then
		rt_name=declared-transient rt_cat= rt_trans=true
	elif [ "$rt_rc" -eq 126 ] || [ "$rt_rc" -eq 127 ]; then
		rt_name=command-not-runnable rt_cat=configuration rt_trans=false
	else
		rt_name= rt_cat= rt_trans=false
	fi
	if [ "$rt_trans" = true ]; then rt_hint=rt:transient; else rt_hint=rt:permanent; fi
	[ -n "$rt_cat" ] && rt_hint="$rt_hint category=$rt_cat"
	[ -n "$rt_name" ] && rt_hint="$rt_hint signature=$rt_name"
	rt_hint="$rt_hint exit=$rt_status"
	[ -n "$rt_signal" ] && rt_hint="$rt_hint signal=$rt_signal"
	[ "$rt_retries" -gt 0 ] && rt_hint="$rt_hint delay=$rt_delay"
	printf '%s' "$rt_hint" >"${RT_TERMINATION_LOG:-/dev/termination-log}" 2>/dev/null
fi

rt_write_context "$rt_status"
rm -rf "$rt_dir"
exit "$rt_status"
