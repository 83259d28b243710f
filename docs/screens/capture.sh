#!/usr/bin/env bash
# Text captures of the main screens at 60, 80 and 120 columns, from a real terminal (tmux),
# on the sample incident: `docs/screens/capture.sh` (needs tmux and `forensics` on PATH).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
work="$(mktemp -d)"
trap 'tmux kill-session -t fcap 2>/dev/null || true; sleep 0.5; rm -rf "$work" || true' EXIT
ln -s "$repo/sample_logs" "$work/sample_logs"
W="2024-02-16T09:14:00Z/2024-02-16T13:32:00Z"

shot() {  # shot NAME WIDTH COMMAND...
    local name="$1" width="$2"; shift 2
    tmux kill-session -t fcap 2>/dev/null || true
    tmux new-session -d -s fcap -x "$width" -y 400 -c "$work" \
        "env -i PATH='$PATH' HOME='$work' TERM=xterm-256color NO_COLOR=1 PS1='$ ' bash --norc --noprofile"
    tmux send-keys -t fcap "clear" Enter
    sleep 0.3
    tmux send-keys -t fcap "$* ; tmux wait-for -S fcap-done" Enter
    tmux wait-for fcap-done
    sleep 0.3
    tmux capture-pane -t fcap -p -J -S - | sed -e 's/[[:space:]]*$//' -e '/^\$ tmux/d' \
        | sed -e 's/ ; tmux wait-for -S fcap-done$//' | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}' \
        > "$here/$name-$width.txt"
    tmux kill-session -t fcap
}

for w in 60 80 120; do
    rm -rf "$work"/case.duckdb*
    shot ingest "$w" forensics --db case.duckdb ingest sample_logs/events sample_logs/grants sample_logs/accounts
    shot status "$w" forensics --db case.duckdb status
    shot exposure "$w" forensics --db case.duckdb exposure --window "$W" --by cache_node
    shot sources "$w" forensics --db case.duckdb sources
done
shot help 80 forensics --help
shot ingest-again 80 forensics --db case.duckdb ingest sample_logs/events
shot wrong-year 80 forensics --db case.duckdb exposure --window 2025-02-16T09:14:00Z/PT4H
shot notify-wrong-year 80 forensics --db case.duckdb notify --window 2025-02-16T09:14/PT4H --out notices
shot rejects 80 forensics --db case.duckdb rejects --limit 5
shot sql 80 forensics --db case.duckdb sql "'select * from events limit 3'"
shot verify 80 forensics --db case.duckdb verify
shot typo 80 forensics exposur
shot piped 80 "forensics --db case.duckdb sources --wide | cat"
