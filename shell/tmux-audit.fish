# tmux-audit hook for fish >= 3.1, printed by `tmux-audit init fish`.
# Load it at the end of ~/.config/fish/config.fish (scripts and `fish -c`
# do not even start tmux-audit):
#
#     status is-interactive; and tmux-audit init fish | source
#
# Every name defined here starts with __tmux_audit_ (and TMUX_AUDIT_SESSION is
# exported for `tmux-audit search --here`). The hook prints nothing,
# keeps $status and $pipestatus, leaves `jobs` and $last_pid alone, and loads
# once per shell. Each command is written to this shell's recorder with a
# builtin: no process is started for it.
if status is-interactive; and not set -q __tmux_audit_session
    set -g __tmux_audit_bin @TMUX_AUDIT_BIN@
    set -g __tmux_audit_log @TMUX_AUDIT_LOG@
    # One id per interactive shell: not exported, so a nested shell makes its own.
    set -g __tmux_audit_session fish.$fish_pid.(random 0 32767)(random 0 32767)(random 0 32767)
    # For `tmux-audit search --here` outside tmux.
    set -gx TMUX_AUDIT_SESSION $__tmux_audit_session
    set -g __tmux_audit_seq 0
    set -g __tmux_audit_cwd $PWD
    # With output capture on in this tmux server (`init tmux` sets
    # TMUX_AUDIT_CAPTURE there), each command's output is marked by an OSC
    # 133 sequence naming the command, which terminals show as nothing.
    set -g __tmux_audit_mark
    if test -n "$TMUX"; and test -n "$TMUX_AUDIT_CAPTURE"
        set -g __tmux_audit_mark 1
    end
    # Command lines whose output is not captured (`[capture] exclude`):
    # after its start mark, such a command's mark says so (`;x`), and its
    # capture drops what it prints.
    set -g __tmux_audit_exclude @TMUX_AUDIT_EXCLUDE@

    # The recorder this shell writes its commands to (see `tmux-audit
    # recorder`): the FIFO it reads and its pid, both empty when there is
    # none (it could not start, or it has gone: then each command starts a
    # recorder of its own). `init` starts it as it prints this script, for
    # the shell whose pid is __tmux_audit_for. Loaded in another shell (the
    # copy of the script in the cache directory, read by the faster rc
    # line), the hook starts one in the background at the first prompt, and
    # takes its pid from the lock beside its FIFO (__tmux_audit_pending) at
    # the first command it finds it running; the commands before that each
    # start a recorder of their own.
    set -g __tmux_audit_for @TMUX_AUDIT_FOR@
    set -g __tmux_audit_fifo @TMUX_AUDIT_FIFO@
    set -g __tmux_audit_recorder @TMUX_AUDIT_RECORDER@
    set -g __tmux_audit_recorders @TMUX_AUDIT_RECORDERS@
    set -g __tmux_audit_pending
    # The last frame written to it: seq, exit, duration, cwd, text.
    set -g __tmux_audit_sent

    function __tmux_audit_start_recorder --on-event fish_prompt
        functions -e __tmux_audit_start_recorder
        test "$__tmux_audit_for" = $fish_pid; and test -n "$__tmux_audit_recorder"; and return 0
        set -g __tmux_audit_recorder
        set -g __tmux_audit_fifo $__tmux_audit_recorders/fish-$fish_pid.fifo
        set -g __tmux_audit_pending $__tmux_audit_recorders/fish-$fish_pid.lock
        # fish has no subshell: sh starts it in the background and ends at
        # once, so the starter is no job of fish (`jobs`, $last_pid kept).
        # It gets fish's stdin (its terminal, which it records) through
        # descriptor 3: sh gives a job /dev/null as its own.
        command sh -c '"$@" <&3 3<&- >/dev/null 2>&1 &' sh \
            $__tmux_audit_bin recorder --shell fish --shell-pid $fish_pid 3<&0 2>/dev/null
    end

    # $argv: one line for the log file, written with the time and `hook:`.
    function __tmux_audit_log_line
        set -l umask_ (umask)
        umask 077
        begin
            command mkdir -p -- (string replace -r '/[^/]*$' '' -- $__tmux_audit_log)
            printf '%s hook: %s\n' (date +%Y-%m-%dT%H:%M:%S%z) "$argv[1]" >>$__tmux_audit_log
        end 2>/dev/null
        umask $umask_
    end

    # True when the recorder is there to take a frame: its process still
    # reads this FIFO (a process that has ended, even one not yet reaped, has
    # no descriptors; a pid used again reads something else). When it has
    # gone, records the last frame again and says so in the log (unless it
    # left on purpose, removing its FIFO: its binary was replaced); then
    # stops using it.
    function __tmux_audit_recorder_alive
        if test -z "$__tmux_audit_recorder"
            test -n "$__tmux_audit_pending"; or return 1
            # Started in the background: running once its lock holds the
            # pid of a process that reads this FIFO.
            # (fish warns on the terminal of a redirection that fails.)
            test -f $__tmux_audit_pending; or return 1
            read -g __tmux_audit_recorder <$__tmux_audit_pending 2>/dev/null
            if test -n "$__tmux_audit_recorder"
                and test /proc/$__tmux_audit_recorder/fd/0 -ef "$__tmux_audit_fifo" 2>/dev/null
                and test -p /proc/$__tmux_audit_recorder/fd/0
                set -g __tmux_audit_pending
                return 0
            end
            set -g __tmux_audit_recorder
            return 1
        end
        # fish's `test -ef` is true of two paths that do not exist: the
        # descriptor must be there after it too.
        test /proc/$__tmux_audit_recorder/fd/0 -ef "$__tmux_audit_fifo" 2>/dev/null
        and test -p /proc/$__tmux_audit_recorder/fd/0
        and return 0
        set -l pid $__tmux_audit_recorder
        set -g __tmux_audit_recorder
        if test -p "$__tmux_audit_fifo"
            # The last frame written may have gone with it, unread: recorded
            # again by a process of its own (the same session and number:
            # stored once if it had landed).
            if test (count $__tmux_audit_sent) -eq 5
                __tmux_audit_send $__tmux_audit_sent
            end
            __tmux_audit_log_line "the recorder of this shell (pid $pid) is gone: the commands run as it went may be missing (a gap in their numbers); each command now starts a recorder of its own; hint: open a new shell to get a recorder again"
        end
        set -g __tmux_audit_sent
        set -g __tmux_audit_fifo
        return 1
    end

    # $argv: seq, exit status, duration, cwd, text. Writes the command's
    # frame to the recorder with a builtin (no process): the header, then
    # the text up to a NUL (fish strings hold none). fish cannot open a FIFO
    # read-write, and opening one write-only waits for a reader: the frame
    # goes to the recorder's own descriptor of it, /proc/PID/fd/0, which
    # exists only while the recorder does (and then has its reader). A
    # recorder gone mid-write costs a failed printf, never a signal (fish
    # ignores SIGPIPE). False when the recorder was gone before or after
    # the write: the caller records the command itself (the same session
    # and number: stored once).
    function __tmux_audit_stream
        __tmux_audit_recorder_alive; or return 1
        printf 'TA1\x00%s\x00%s\x00%s\x00\x00\x00%s\x00%s\x00T\x00%s\x00' "$__tmux_audit_session" \
            $argv[1] $argv[2] $argv[3] $argv[4] $argv[5] >/proc/$__tmux_audit_recorder/fd/0 2>/dev/null
        __tmux_audit_recorder_alive
    end

    # $argv: seq, exit status, duration, cwd, text. Records the command with
    # a process of its own.
    function __tmux_audit_send
        if test -x $__tmux_audit_bin
            printf '%s\n' $argv[5] | $__tmux_audit_bin record --shell fish --session $__tmux_audit_session \
                --seq $argv[1] --exit $argv[2] --duration-ms $argv[3] --cwd $argv[4] >/dev/null 2>&1
        else if not set -q __tmux_audit_warned
            set -g __tmux_audit_warned 1
            __tmux_audit_log_line "fish cannot run $__tmux_audit_bin; hint: reinstall tmux-audit, or re-run `tmux-audit init fish | source` so the hook points at its new path"
        end
    end

    function __tmux_audit_preexec --on-event fish_preexec
        set -g __tmux_audit_cwd $PWD
        if test -n "$__tmux_audit_mark"
            printf '\e]133;C;ta=%s/%s\a' $__tmux_audit_session (math $__tmux_audit_seq + 1) 2>/dev/null
            # Leading blanks (kept out of history) do not count; the
            # pattern may start the line or any command in it.
            set -l line (string trim -l -- "$argv[1]")
            for pattern in $__tmux_audit_exclude
                if string match -q -- $pattern "$line"
                    or string match -q -r -- '[;&|(]\s?'(string escape --style=regex -- $pattern | string replace -a '\\*' '.*' | string replace -a '\\?' '.')'$' "$line"
                    printf '\e]133;C;ta=%s/%s;x\a' $__tmux_audit_session (math $__tmux_audit_seq + 1) 2>/dev/null
                    break
                end
            end
        end
    end

    # fish emits fish_postexec once per command line it ran, with the line as
    # typed (leading space or not) in $argv[1], and never for an empty line.
    # $CMD_DURATION is the command's duration in milliseconds.
    function __tmux_audit_postexec --on-event fish_postexec
        set -l status_ $status
        if test -n "$__tmux_audit_mark"
            printf '\e]133;D;ta=%s/%s\a' $__tmux_audit_session (math $__tmux_audit_seq + 1) 2>/dev/null
        end
        set -g __tmux_audit_seq (math $__tmux_audit_seq + 1)
        set -l frame $__tmux_audit_seq $status_ "$CMD_DURATION" "$__tmux_audit_cwd" "$argv[1]"
        # The recorder started when the hook loaded: no process for this command.
        if __tmux_audit_stream $frame
            set -g __tmux_audit_sent $frame
        else
            __tmux_audit_send $frame
        end
    end
end

# >>> tmux-audit pick: Ctrl-R (left out by `tmux-audit init fish --no-bind`)
# Ctrl-R opens `tmux-audit pick` on the terminal, starting from the line typed
# so far; the command picked replaces the line, not run (Esc leaves the line
# as it was). The binding prints nothing, keeps $status, and leaves the line
# alone when the binary is gone.
if status is-interactive
    set -g __tmux_audit_pick_bin @TMUX_AUDIT_BIN@
    function __tmux_audit_pick
        if test -x $__tmux_audit_pick_bin
            # `string collect -N` keeps the command whole, newlines and all;
            # it fails when nothing was picked.
            set -l picked ($__tmux_audit_pick_bin pick --query=(commandline | string collect) </dev/tty | string collect -N)
            and commandline -r -- $picked
        end
        commandline -f repaint
    end
    bind \cr __tmux_audit_pick
    bind -M insert \cr __tmux_audit_pick
end
# <<< tmux-audit pick: Ctrl-R
