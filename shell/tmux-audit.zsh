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
    autoload -Uz add-zsh-hook
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
}

__tmux_audit_preexec() {
    emulate -L zsh
    __tmux_audit_command=("$1")
    __tmux_audit_cwd=$PWD
    local -a now=($epochtime) # one reading: seconds and nanoseconds of the same instant
    __tmux_audit_start=$(( now[1] * 1000000 + now[2] / 1000 ))
    if [[ -n $__tmux_audit_mark ]]; then
        print -rn -- $'\e]133;C;ta='"$__tmux_audit_session/$(( __tmux_audit_seq + 1 ))"$'\a' 2>/dev/null
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
        # The text goes through a pipe, never a file: zsh makes a temporary
        # file for a here-string (in $TMPPREFIX), which would hold the
        # unredacted text on disk for a moment, and when it cannot be made
        # the command is not run at all.
        print -r -- "$text" 2>/dev/null | "$__tmux_audit_bin" record --shell zsh --session "$__tmux_audit_session" \
            --seq "$__tmux_audit_seq" --exit "$status_" --start-us "$__tmux_audit_start" --end-us "$end" --cwd "$__tmux_audit_cwd" \
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
            (
                umask 077
                command mkdir -p -- "${__tmux_audit_log:h}"
                print -r -- "$(strftime '%Y-%m-%dT%H:%M:%S%z' $EPOCHSECONDS) hook: $what" >>"$__tmux_audit_log"
            ) 2>/dev/null
        fi
    fi
}

add-zsh-hook preexec __tmux_audit_preexec
add-zsh-hook precmd __tmux_audit_precmd
# First among the precmd hooks, so a slow prompt hook does not count in the
# command's duration.
precmd_functions=(__tmux_audit_precmd ${precmd_functions:#__tmux_audit_precmd})

fi
