# tmux-audit hook for zsh, printed by `tmux-audit init zsh`.
# Load it at the end of ~/.zshrc:
#
#     eval "$(tmux-audit init zsh)"
#
# Every name defined here starts with __tmux_audit_ (and TMUX_AUDIT_SESSION is
# exported for `tmux-audit search --here`). The hook prints nothing,
# keeps $? and $pipestatus, works under `setopt nounset`, and loads once per
# shell.
if [[ -o interactive && -z ${__tmux_audit_session-} ]]; then

# Loaded under zsh's own options, whatever the user set (KSH_ARRAYS, NOUNSET…).
() {
    emulate -L zsh
    zmodload zsh/datetime 2>/dev/null
    typeset -g __tmux_audit_bin=@TMUX_AUDIT_BIN@
    typeset -g __tmux_audit_log=@TMUX_AUDIT_LOG@
    # One id per interactive shell: not exported, so a nested shell makes its own.
    typeset -g __tmux_audit_session="zsh.$$.${epochtime[1]}${epochtime[2]}.$RANDOM"
    # For `tmux-audit search --here` outside tmux.
    export TMUX_AUDIT_SESSION=$__tmux_audit_session
    typeset -gi __tmux_audit_seq=0
    typeset -g __tmux_audit_start=
    typeset -g __tmux_audit_cwd=
    typeset -g __tmux_audit_warned=
    typeset -ga __tmux_audit_command=()
    # With output capture on in this tmux server (`init tmux` sets
    # TMUX_AUDIT_CAPTURE there), each command's output is marked by an OSC
    # 133 sequence naming the command, which terminals show as nothing.
    typeset -g __tmux_audit_mark=
    if [[ -n ${TMUX-} && -n ${TMUX_AUDIT_CAPTURE-} ]]; then
        __tmux_audit_mark=1
    fi
    # Command lines whose output is not captured (`[capture] exclude`):
    # after its start mark, such a command's mark says so (`;x`), and its
    # capture drops what it prints.
    typeset -ga __tmux_audit_exclude=(@TMUX_AUDIT_EXCLUDE@)
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
    typeset -g __tmux_audit_for=@TMUX_AUDIT_FOR@
    typeset -g __tmux_audit_fifo=@TMUX_AUDIT_FIFO@ __tmux_audit_recorder=@TMUX_AUDIT_RECORDER@
    typeset -g __tmux_audit_recorders=@TMUX_AUDIT_RECORDERS@
    typeset -g __tmux_audit_pending= __tmux_audit_want_recorder=1
    # The last frame written to it: seq, exit, start, end, cwd, text.
    typeset -ga __tmux_audit_sent=()
}

__tmux_audit_start_recorder() {
    __tmux_audit_want_recorder=
    [[ $__tmux_audit_for == $$ && -n $__tmux_audit_recorder ]] && return 0
    __tmux_audit_recorder=
    __tmux_audit_fifo=$__tmux_audit_recorders/zsh-$$.fifo
    __tmux_audit_pending=$__tmux_audit_recorders/zsh-$$.lock
    # In a subshell that ends at once: the shell waits for no exec, and
    # the starter is no job of the shell (nothing in `jobs`, `$!` kept).
    # It gets the shell's stdin (its terminal, which it records) through
    # descriptor 3: a job's own stdin is /dev/null there.
    ("$__tmux_audit_bin" recorder --shell zsh --shell-pid $$ <&3 3<&- >/dev/null 2>&1 &) 3<&0
}

# $1: one line for the log file, written with the time and `hook:`.
__tmux_audit_log_line() {
    (
        umask 077
        command mkdir -p -- "${__tmux_audit_log:h}"
        print -r -- "$(strftime '%Y-%m-%dT%H:%M:%S%z' $EPOCHSECONDS) hook: $1" >>"$__tmux_audit_log"
    ) 2>/dev/null
}

# True when the recorder is there to take a frame: its process still reads
# this FIFO (a process that has ended, even one not yet reaped, has no
# descriptors; a pid used again reads something else). When it has gone,
# records the last frame again and says so in the log (unless it left on
# purpose, removing its FIFO: its binary was replaced); then stops using it.
__tmux_audit_recorder_alive() {
    if [[ -z $__tmux_audit_recorder ]]; then
        [[ -n $__tmux_audit_pending ]] || return 1
        # Started in the background: running once its lock holds the pid
        # of a process that reads this FIFO.
        { builtin read -r __tmux_audit_recorder <$__tmux_audit_pending } 2>/dev/null
        if [[ -n $__tmux_audit_recorder && /proc/$__tmux_audit_recorder/fd/0 -ef $__tmux_audit_fifo ]]; then
            __tmux_audit_pending=
            return 0
        fi
        __tmux_audit_recorder=
        return 1
    fi
    [[ /proc/$__tmux_audit_recorder/fd/0 -ef $__tmux_audit_fifo ]] && return 0
    if [[ -p $__tmux_audit_fifo ]]; then
        # The last frame written may have gone with it, unread: recorded
        # again by a process of its own (the same session and number:
        # stored once if it had landed).
        (( ${#__tmux_audit_sent} == 6 )) && __tmux_audit_send "${__tmux_audit_sent[@]}"
        __tmux_audit_sent=()
        __tmux_audit_log_line "the recorder of this shell (pid $__tmux_audit_recorder) is gone: the commands run as it went may be missing (a gap in their numbers); each command now starts a recorder of its own; hint: open a new shell to get a recorder again"
    fi
    __tmux_audit_recorder= __tmux_audit_fifo=
    return 1
}

# $1: exit status, $2: start, $3: end, $4: the command's text. Writes the
# command's frame to the recorder with builtins only (no fork): the header,
# then the text after its length in bytes. The FIFO is opened read-write:
# the open never blocks and a recorder gone costs no SIGPIPE. False when the
# recorder was gone before or after the write: the caller records the
# command itself (the same session and number: stored once).
__tmux_audit_stream() {
    emulate -L zsh
    unsetopt multibyte # ${#4}: bytes
    __tmux_audit_recorder_alive || return 1
    # On descriptor 3: what a TRAPDEBUG of the user's prints goes to
    # stdout, here /dev/null, not into the frame.
    {
        builtin printf 'TA1\0%s\0%s\0%s\0%s\0%s\0\0%s\0L%s\0' "$__tmux_audit_session" \
            "$__tmux_audit_seq" "$1" "$2" "$3" "$__tmux_audit_cwd" "${#4}" >&3
        builtin print -rn -- "$4" >&3
    } 3<>$__tmux_audit_fifo >/dev/null 2>/dev/null
    __tmux_audit_recorder_alive
}

__tmux_audit_preexec() {
    emulate -L zsh
    __tmux_audit_command=("$1")
    __tmux_audit_cwd=$PWD
    local -a now=($epochtime) # one reading: seconds and nanoseconds of the same instant
    __tmux_audit_start=$(( now[1] * 1000000 + now[2] / 1000 ))
    if [[ -n $__tmux_audit_mark ]]; then
        print -rn -- $'\e]133;C;ta='"$__tmux_audit_session/$(( __tmux_audit_seq + 1 ))"$'\a' 2>/dev/null
        # Leading blanks (` pass show`, kept out of history) do not count;
        # the pattern may start the line or any command in it.
        local pattern line=${1#"${1%%[![:blank:]]*}"}
        for pattern in $__tmux_audit_exclude; do
            if [[ $line == ${~pattern} || $line == *[\;\&\|\(\`]${~pattern} ||
                $line == *[\;\&\|\(\`][[:blank:]]${~pattern} ]]; then
                print -rn -- $'\e]133;C;ta='"$__tmux_audit_session/$(( __tmux_audit_seq + 1 ))"$';x\a' 2>/dev/null
                break
            fi
        done
    fi
}

__tmux_audit_precmd() {
    # zsh hands each precmd function the command's own $? and $pipestatus,
    # and restores them afterwards: nothing to hand back.
    local -i status_=$?
    emulate -L zsh
    local -a now=($epochtime) # one reading: seconds and nanoseconds of the same instant
    local -i end=$(( now[1] * 1000000 + now[2] / 1000 ))
    # Unset after each record: an empty Enter or Ctrl-C at the prompt runs
    # no preexec and records nothing.
    if (( ${#__tmux_audit_command} )); then
        local text=$__tmux_audit_command[1]
        __tmux_audit_command=()
        if [[ -n $__tmux_audit_mark ]]; then
            print -rn -- $'\e]133;D;ta='"$__tmux_audit_session/$(( __tmux_audit_seq + 1 ))"$'\a' 2>/dev/null
        fi
        __tmux_audit_seq+=1
        # The recorder started when the hook loaded: no process for this command.
        if __tmux_audit_stream "$status_" "$__tmux_audit_start" "$end" "$text"; then
            __tmux_audit_sent=("$__tmux_audit_seq" "$status_" "$__tmux_audit_start" "$end" "$__tmux_audit_cwd" "$text")
            return 0
        fi
        __tmux_audit_send "$__tmux_audit_seq" "$status_" "$__tmux_audit_start" "$end" "$__tmux_audit_cwd" "$text"
    fi
    [[ -n $__tmux_audit_want_recorder ]] && __tmux_audit_start_recorder
    return 0
}

# $1..$6: seq, exit status, start, end, cwd, text. Records the command with
# a process of its own.
__tmux_audit_send() {
    emulate -L zsh
    # The text goes through a pipe, never a file: zsh makes a temporary
    # file for a here-string (in $TMPPREFIX), which would hold the
    # unredacted text on disk for a moment, and when it cannot be made
    # the command is not run at all.
    print -r -- "$6" 2>/dev/null | "$__tmux_audit_bin" record --shell zsh --session "$__tmux_audit_session" \
        --seq "$1" --exit "$2" --start-us "$3" --end-us "$4" --cwd "$5" \
        >/dev/null 2>&1
    local -i rc=$?
    # The recorder logs its own errors (exit 2); anything else is logged
    # here: once per shell when the binary cannot be run at all.
    if (( rc != 0 && rc != 2 )) && { (( rc != 126 && rc != 127 )) || [[ -z $__tmux_audit_warned ]] }; then
        local what="$__tmux_audit_bin failed (exit $rc) and could not say why: the record of this command may be lost; hint: run \`tmux-audit doctor\`"
        if (( rc == 126 || rc == 127 )); then
            __tmux_audit_warned=1
            what="zsh cannot run $__tmux_audit_bin (exit $rc); hint: reinstall tmux-audit, or re-run \`eval \"\$(tmux-audit init zsh)\"\` so the hook points at its new path"
        fi
        __tmux_audit_log_line "$what"
    fi
}

# A command line that ends the shell (`make deploy; exit 4`) never reaches
# the next prompt: it is recorded on the way out, with the shell's exit
# status (and no recorder is started then).
__tmux_audit_zshexit() {
    local -i status_=$?
    emulate -L zsh
    (( ${#__tmux_audit_command} )) || return 0
    local __tmux_audit_want_recorder=
    () { return $1 } $status_
    __tmux_audit_precmd
}

# The hook arrays themselves, not add-zsh-hook: loading that function from
# $fpath was a third of what sourcing this script cost (loaded once per
# shell, so never twice in them). First among the precmd hooks, so a slow
# prompt hook does not count in the command's duration.
() {
    emulate -L zsh
    typeset -ga preexec_functions precmd_functions zshexit_functions
    preexec_functions+=(__tmux_audit_preexec)
    precmd_functions=(__tmux_audit_precmd ${precmd_functions:#__tmux_audit_precmd})
    zshexit_functions=(__tmux_audit_zshexit ${zshexit_functions:#__tmux_audit_zshexit})
}

fi

# >>> tmux-audit pick: Ctrl-R (left out by `tmux-audit init zsh --no-bind`)
# Ctrl-R opens `tmux-audit pick` on the terminal, starting from the line typed
# so far; the command picked replaces the line, not run (Esc leaves the line
# as it was). The widget prints nothing, keeps $?, works under `setopt
# nounset`, and leaves the line alone when the binary is gone.
if [[ -o interactive ]]; then
typeset -g __tmux_audit_pick_bin=@TMUX_AUDIT_BIN@
__tmux_audit_pick_widget() {
    emulate -L zsh
    local picked
    if [[ -x $__tmux_audit_pick_bin ]]; then
        # The `.` keeps a picked command's trailing newlines from `$(…)`,
        # and is printed only when a command was picked.
        picked=$("$__tmux_audit_pick_bin" pick --query="$BUFFER" </dev/tty && print -rn .)
        if [[ $picked == *. ]]; then
            BUFFER=${picked%.}
            CURSOR=${#BUFFER}
        fi
        zle reset-prompt
    fi
}
zle -N __tmux_audit_pick_widget
bindkey -M emacs '^R' __tmux_audit_pick_widget
bindkey -M viins '^R' __tmux_audit_pick_widget
bindkey -M vicmd '^R' __tmux_audit_pick_widget
fi
# <<< tmux-audit pick: Ctrl-R
