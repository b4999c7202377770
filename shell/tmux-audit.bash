# tmux-audit hook for bash >= 5.0, printed by `tmux-audit init bash`.
# Load it at the end of ~/.bashrc (after anything that sets PROMPT_COMMAND or PS0):
#
#     eval "$(tmux-audit init bash)"
#
# Every name defined here starts with __tmux_audit_ (and TMUX_AUDIT_SESSION is
# exported for `tmux-audit search --here`). The hook prints nothing,
# keeps $? and PIPESTATUS, works under `set -u`, and loads once per shell.
if [[ $- == *i* && -z ${__tmux_audit_session-} ]] && ((BASH_VERSINFO[0] >= 5)); then

__tmux_audit_bin=@TMUX_AUDIT_BIN@
__tmux_audit_log=@TMUX_AUDIT_LOG@
# One id per interactive shell: not exported, so a nested shell makes its own.
__tmux_audit_session="bash.$$.${EPOCHREALTIME//[^0-9]/}.$RANDOM"
# For `tmux-audit search --here` outside tmux.
export TMUX_AUDIT_SESSION=$__tmux_audit_session
__tmux_audit_seq=0
__tmux_audit_start=
__tmux_audit_hist=
__tmux_audit_prev=
__tmux_audit_warned=
__tmux_audit_cwd=$PWD
__tmux_audit_histcontrol=${HISTCONTROL-}
__tmux_audit_histignore=${HISTIGNORE-}
__tmux_audit_histcontrol_set=
__tmux_audit_histignore_set=

# PS0 is expanded after a command line is read and before it runs (never for
# an empty line). The arithmetic in this subscript notes the start time in
# microseconds and the command's history number, without forking, and the
# whole expansion is empty.
# shellcheck disable=SC2016 # expanded by bash each time it shows PS0
__tmux_audit_ps0='${__tmux_audit_none[(__tmux_audit_start=${EPOCHREALTIME//[^0-9]/}),(__tmux_audit_hist=\!),0]-}'

# HISTCONTROL=ignorespace/ignoredups/ignoreboth and HISTIGNORE keep a command
# out of the history list, which is where bash keeps the text of the command
# just run. The hook keeps the user's values aside, lets every command into
# the list, and after recording removes from the list what the user's values
# would have kept out (__tmux_audit_forget). A later change of either variable
# is taken as the user's new wish at the next prompt.
__tmux_audit_adopt_history_settings() {
    [[ ${HISTCONTROL-} == "${__tmux_audit_histcontrol_set-}" && ${HISTIGNORE-} == "${__tmux_audit_histignore_set-}" ]] && return 0
    __tmux_audit_histcontrol=${HISTCONTROL-}
    __tmux_audit_histignore=${HISTIGNORE-}
    HISTCONTROL=
    [[ :$__tmux_audit_histcontrol: == *:erasedups:* ]] && HISTCONTROL=erasedups
    HISTIGNORE=
    __tmux_audit_histcontrol_set=$HISTCONTROL
    __tmux_audit_histignore_set=$HISTIGNORE
}

# $1: history number, $2: command text. Drops the entry from the history list
# when the user's HISTCONTROL/HISTIGNORE would never have let it in.
__tmux_audit_forget() {
    local text=$2 drop='' pattern patterns
    case :$__tmux_audit_histcontrol: in
    *:ignorespace:* | *:ignoreboth:*) [[ $text == ' '* ]] && drop=1 ;;
    esac
    case :$__tmux_audit_histcontrol: in
    *:erasedups:*) ;; # bash already erased the earlier copy: keep this one
    *:ignoredups:* | *:ignoreboth:*) [[ $text == "$__tmux_audit_prev" ]] && drop=1 ;;
    esac
    if [[ -z $drop && -n $__tmux_audit_histignore ]]; then
        IFS=: read -r -a patterns <<<"$__tmux_audit_histignore"
        # shellcheck disable=SC2053 # a HISTIGNORE entry is a pattern
        for pattern in "${patterns[@]}"; do
            if [[ $pattern == '&' ]]; then
                [[ $text == "$__tmux_audit_prev" ]] && drop=1
            elif [[ $text == $pattern ]]; then
                drop=1
            fi
        done
    fi
    if [[ -n $drop ]]; then
        builtin history -d "$1"
    else
        __tmux_audit_prev=$text
    fi
}

# $1: the exit status of the command that just finished, $2: when it ended.
__tmux_audit_record() {
    local HISTTIMEFORMAT='' entry number text rc start=$__tmux_audit_start
    __tmux_audit_start= # first: whatever happens next, this command is done
    entry=$(builtin history 1)
    entry=${entry#"${entry%%[^[:space:]]*}"}
    number=${entry%%[^0-9]*}
    __tmux_audit_seq=$((__tmux_audit_seq + 1))
    local record=("$__tmux_audit_bin" record --shell bash --session "$__tmux_audit_session"
        --seq "$__tmux_audit_seq" --exit "$1" --start-us "$start" --end-us "$2" --cwd "$__tmux_audit_cwd")
    if [[ -n $number && $number == "$__tmux_audit_hist" ]]; then
        # `history 1` prints the number, a `*` or a blank, a blank, the text.
        text=${entry:${#number}+2}
        "${record[@]}" >/dev/null 2>&1 <<<"$text"
        rc=$?
        __tmux_audit_forget "$number" "$text"
    else
        # History is off (`set +o history`, HISTSIZE=0): the text is gone,
        # but that a command ran, when, where and how it ended is recorded.
        "${record[@]}" --text-unavailable >/dev/null 2>&1 </dev/null
        rc=$?
    fi
    if ((rc == 126 || rc == 127)) && [[ -z $__tmux_audit_warned ]]; then
        __tmux_audit_warned=1
        # shellcheck disable=SC2016 # the hint shows the line to type
        (
            umask 077
            command mkdir -p -- "${__tmux_audit_log%/*}"
            printf '%(%Y-%m-%dT%H:%M:%S%z)T hook: bash cannot run %s (exit %s); hint: reinstall tmux-audit, or re-run `eval "$(tmux-audit init bash)"` so the hook points at its new path\n' \
                -1 "$__tmux_audit_bin" "$rc" >>"$__tmux_audit_log"
        ) 2>/dev/null
    fi
}

# First in PROMPT_COMMAND, so $? is the command's own; it is handed on to
# whatever runs after it. (bash itself keeps PIPESTATUS for the next command,
# and for later elements when PROMPT_COMMAND is an array.)
__tmux_audit_precmd() {
    local status=$? end=${EPOCHREALTIME//[^0-9]/}
    if [[ -n $__tmux_audit_start ]]; then
        __tmux_audit_record "$status" "$end"
    fi
    # Where the next command starts.
    __tmux_audit_cwd=$PWD
    __tmux_audit_adopt_history_settings
    # PS0 is expanded only with promptvars on; off, it would show the code.
    if shopt -q promptvars; then
        [[ ${PS0-} == *"$__tmux_audit_ps0"* ]] || PS0=${PS0-}$__tmux_audit_ps0
    else
        PS0=${PS0//"$__tmux_audit_ps0"/}
    fi
    # bash restores $? for the prompt itself; only later PROMPT_COMMAND
    # entries need it handed on. Returning it when nothing follows would
    # fire an ERR trap a second time for the same command.
    # (`${#PROMPT_COMMAND[@]}` would fail under `set -u` while it runs.)
    if [[ -n ${PROMPT_COMMAND[1]+x} || ${PROMPT_COMMAND-} != __tmux_audit_precmd ]]; then
        return "$status"
    fi
}

__tmux_audit_adopt_history_settings
# Multi-line commands stay multi-line in the history list, so they are
# recorded as typed rather than joined with `;`.
shopt -s cmdhist lithist
if shopt -q promptvars; then
    PS0=${PS0-}$__tmux_audit_ps0
fi
if [[ -v PROMPT_COMMAND && ${PROMPT_COMMAND@a} == *a* ]]; then
    PROMPT_COMMAND=(__tmux_audit_precmd "${PROMPT_COMMAND[@]}")
else
    # shellcheck disable=SC2128,SC2178 # a string here, as the user had it
    PROMPT_COMMAND="__tmux_audit_precmd${PROMPT_COMMAND:+$'\n'$PROMPT_COMMAND}"
fi

fi
