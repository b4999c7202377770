# tmux-audit hook for fish >= 3.1, printed by `tmux-audit init fish`.
# Load it at the end of ~/.config/fish/config.fish (scripts and `fish -c`
# do not even start tmux-audit):
#
#     status is-interactive; and tmux-audit init fish | source
#
# Every name defined here starts with __tmux_audit_ (and TMUX_AUDIT_SESSION is
# exported for `tmux-audit search --here`). The hook prints nothing,
# keeps $status and $pipestatus, and loads once per shell.
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

    function __tmux_audit_preexec --on-event fish_preexec
        set -g __tmux_audit_cwd $PWD
        if test -n "$__tmux_audit_mark"
            printf '\e]133;C;ta=%s/%s\a' $__tmux_audit_session (math $__tmux_audit_seq + 1) 2>/dev/null
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
        if test -x $__tmux_audit_bin
            printf '%s\n' $argv[1] | $__tmux_audit_bin record --shell fish --session $__tmux_audit_session \
                --seq $__tmux_audit_seq --exit $status_ --duration-ms $CMD_DURATION --cwd "$__tmux_audit_cwd" >/dev/null 2>&1
        else if not set -q __tmux_audit_warned
            set -g __tmux_audit_warned 1
            set -l umask_ (umask)
            umask 077
            begin
                command mkdir -p -- (string replace -r '/[^/]*$' '' -- $__tmux_audit_log)
                printf '%s hook: fish cannot run %s; hint: reinstall tmux-audit, or re-run `tmux-audit init fish | source` so the hook points at its new path\n' \
                    (date +%Y-%m-%dT%H:%M:%S%z) $__tmux_audit_bin >>$__tmux_audit_log
            end 2>/dev/null
            umask $umask_
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
