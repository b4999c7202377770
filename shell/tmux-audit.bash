# tmux-audit hook for bash >= 5.0, printed by `tmux-audit init bash`.
# Load it at the end of ~/.bashrc (after anything that sets PROMPT_COMMAND or PS0):
#
#     eval "$(tmux-audit init bash)"
#
# Every name defined here starts with __tmux_audit_ (and TMUX_AUDIT_SESSION is
# exported for `tmux-audit search --here`). The hook prints nothing, keeps $?,
# fires no ERR trap and no `set -e` exit of its own, leaves nothing in `jobs`,
# `$!` or the user's history file, works under `set -u`, and loads once per shell.
if [[ $- == *i* && -z ${__tmux_audit_session-} ]] && ((BASH_VERSINFO[0] >= 5)); then

__tmux_audit_bin=@TMUX_AUDIT_BIN@
__tmux_audit_log=@TMUX_AUDIT_LOG@
# One id per interactive shell: not exported, so a nested shell makes its own.
# (${EPOCHREALTIME:+…}: empty rather than an error under `set -u` when unset.)
__tmux_audit_session="bash.$$.${EPOCHREALTIME:+${EPOCHREALTIME//[^0-9]/}}.$RANDOM"
# For `tmux-audit search --here` outside tmux.
export TMUX_AUDIT_SESSION=$__tmux_audit_session
__tmux_audit_seq=0
__tmux_audit_start=
__tmux_audit_hist=
# A command line of several commands (a pasted block: bash runs each line
# as a command of its own, with an entry of its own in the history list)
# shows PS0 before each command but runs PROMPT_COMMAND once, after the
# last: PS0 sets each command that has ended before the next aside here
# (its start, end, history number and exit status, and where it started),
# and the prompt records them all. __tmux_audit_ended counts them.
__tmux_audit_ended=0
__tmux_audit_ended_start=()
__tmux_audit_ended_end=()
__tmux_audit_ended_hist=()
__tmux_audit_ended_status=()
# The directory each command of the line after its first started in, the
# one running included (indexed as the commands set aside): PS0 sets it
# with `:=`, the subscript of an associative array with no keys (a string,
# not arithmetic) holding the assignment, so that nothing is printed.
__tmux_audit_cwds=()
declare -gA __tmux_audit_no_keys=()
# What this shell puts before each entry's text when it lists them
# (__tmux_audit_list_entries): no text holds it by chance.
__tmux_audit_stamp=$'\001'"ta.$$.$RANDOM$RANDOM$RANDOM"$'\001'
# HISTCMD at the last prompt, once the hook had dropped what it drops: the
# number the line typed next gets first (empty: not known yet).
__tmux_audit_histcmd=
__tmux_audit_prev=
__tmux_audit_warned=
__tmux_audit_cwd=$PWD
__tmux_audit_histcontrol=${HISTCONTROL-}
__tmux_audit_histignore=${HISTIGNORE-}
__tmux_audit_histcontrol_set=
__tmux_audit_histignore_set=
# bash >= 5.1 hands a here-string to a command through a pipe when it fits
# in one (bash 5.0, or BASH_COMPAT=50 and below, through a temporary file).
__tmux_audit_herepipe=
((BASH_VERSINFO[0] > 5 || BASH_VERSINFO[1] >= 1)) && __tmux_audit_herepipe=1

# The hook's entry in PROMPT_COMMAND. Its status is the command's, handed on
# to the entries after it; as the first command of an `&&` list, a non-zero
# status fires no ERR trap and ends no `set -e` shell. `;` after it, as
# tools such as direnv expect when they look for their own entry.
__tmux_audit_entry='__tmux_audit_precmd && :'

# PS0 is expanded before each command of a command line runs (never for an
# empty line). The arithmetic in these subscripts notes the start time in
# microseconds (0: unknown) and the command's history number, without
# forking; the whole expansion is empty. Before that, when a command of the
# same line ran before this one (a start noted and not yet recorded), it is
# set aside with its end time and `$?`, its exit status, and where this one
# starts is noted (the first's is where the prompt was: nothing to note for
# a line of one command). It comes first in PS0 (__tmux_audit_ps0_head),
# before the user's part, whose command substitutions would change `$?`;
# the output mark (below) comes last (__tmux_audit_ps0).
# shellcheck disable=SC2016 # expanded by bash each time it shows PS0
__tmux_audit_ps0_head='${__tmux_audit_start:+${__tmux_audit_none[(__tmux_audit_ended_start[__tmux_audit_ended]=__tmux_audit_start),(__tmux_audit_ended_end[__tmux_audit_ended]=10#0${EPOCHREALTIME:+${EPOCHREALTIME//[^0-9]/}}),(__tmux_audit_ended_hist[__tmux_audit_ended]=__tmux_audit_hist),(__tmux_audit_ended_status[__tmux_audit_ended]=$?),(__tmux_audit_ended+=1),0]-}${__tmux_audit_no_keys[.${__tmux_audit_cwds[__tmux_audit_ended]:=${PWD-}}]-}}${__tmux_audit_none[(__tmux_audit_start=10#0${EPOCHREALTIME:+${EPOCHREALTIME//[^0-9]/}}),(__tmux_audit_hist=\!),0]-}'
__tmux_audit_ps0=
# PS0's length once the hook's parts were put in it (see __tmux_audit_precmd;
# -1: to be checked).
__tmux_audit_ps0_length=-1

# With output capture on in this tmux server (`[capture]` in config.toml:
# `init tmux` sets TMUX_AUDIT_CAPTURE there), each command's output is
# marked by an OSC 133 sequence naming the command, before it runs (in PS0)
# and after it ends, which terminals show as nothing and `tmux-audit show
# --output` finds in the pane's captured output.
__tmux_audit_mark=
# Command lines whose output is not captured (`[capture] exclude`). bash
# knows a command line's text before it runs only in a DEBUG trap: PS0
# arms it, and while armed (until the command ends) it matches each
# simple command as it starts; the first that matches prints a second
# start mark saying so (`;x`), and the capture drops what follows. The
# trap is set only with capture on and patterns to match; a DEBUG trap of
# the user's, set before, still runs after it, with its `$_` and `$?`.
__tmux_audit_exclude=(@TMUX_AUDIT_EXCLUDE@)
__tmux_audit_armed=0
if [[ -n ${TMUX-} && -n ${TMUX_AUDIT_CAPTURE-} ]]; then
    __tmux_audit_mark=1
    # The end mark of the command before on the same line, first.
    # shellcheck disable=SC2016 # expanded by bash each time it shows PS0
    __tmux_audit_ps0_head='${__tmux_audit_start:+\e]133;D;ta=${__tmux_audit_session}/$((__tmux_audit_seq + 1 + __tmux_audit_ended))\a}'$__tmux_audit_ps0_head
    # shellcheck disable=SC2016 # expanded by bash each time it shows PS0
    __tmux_audit_ps0+='\e]133;C;ta=${__tmux_audit_session}/$((__tmux_audit_seq + 1 + __tmux_audit_ended))\a'
    if ((${#__tmux_audit_exclude[@]})); then
        # shellcheck disable=SC2016 # expanded by bash each time it shows PS0
        __tmux_audit_ps0+='${__tmux_audit_none[__tmux_audit_armed=1]-}'
        # $1: the status to hand on (the trap's next command sees it).
        __tmux_audit_exclude_check() {
            local status=$1 pattern
            # Not in a subshell or a command substitution (a trap inherited
            # with `set -T`): a mark there would go into the command's data.
            ((__tmux_audit_armed && !BASH_SUBSHELL)) || return "$status"
            for pattern in "${__tmux_audit_exclude[@]}"; do
                # The pattern at the start of the command, or of a command
                # in it (`echo "$(pass show x)"`, `a; b` as one string).
                # shellcheck disable=SC2053 # an exclude entry is a pattern
                if [[ $BASH_COMMAND == $pattern || $BASH_COMMAND == *[\;\&\|\(\`]$pattern ||
                    $BASH_COMMAND == *[\;\&\|\(\`][[:blank:]]$pattern ]]; then
                    __tmux_audit_armed=0
                    builtin printf '\e]133;C;ta=%s/%s;x\a' "$__tmux_audit_session" "$((__tmux_audit_seq + 1 + __tmux_audit_ended))" 2>/dev/null || :
                    break
                fi
            done
            return "$status"
        }
        __tmux_audit_debug_trap=$({ builtin trap -p DEBUG >&3; } 3>&1 >/dev/null)
        __tmux_audit_debug_trap=${__tmux_audit_debug_trap#"trap -- "}
        __tmux_audit_debug_trap=${__tmux_audit_debug_trap%" DEBUG"}
        [[ -n $__tmux_audit_debug_trap ]] && eval "__tmux_audit_debug_trap=$__tmux_audit_debug_trap"
        # `"$_"` as the last word: the call leaves `$_` as it was. Alone,
        # the trap's status is 0 (with extdebug, a non-zero one would skip
        # the command); before the user's trap, `$?` is handed on to it, in
        # an `&&` list so that a non-zero one sets off neither `set -e` nor
        # an ERR trap.
        # shellcheck disable=SC2016 # expanded by bash each time the trap runs
        if [[ -n $__tmux_audit_debug_trap ]]; then
            builtin trap '__tmux_audit_exclude_check "$?" "$_" && : "$_"
'"$__tmux_audit_debug_trap" DEBUG
        else
            builtin trap '((__tmux_audit_armed == 0)) || __tmux_audit_exclude_check 0 "$_"' DEBUG
        fi
    fi
fi

# HISTCONTROL=ignorespace/ignoredups/ignoreboth and HISTIGNORE keep a command
# out of the history list, which is where bash keeps the text of the command
# just run. The hook keeps the user's values aside, lets every command into
# the list, and removes from the list what the user's values would have kept
# out (__tmux_audit_forget) before anything else can see it: first thing at
# the next prompt (the hook stays the first to run there), or on the way
# out when the command line ends the shell (__tmux_audit_on_exit). Multi-line
# commands are kept as the user's `lithist` says. A later change of either
# variable is taken as the user's new wish at the next prompt, each on its
# own. The hook's values end in `:` (an empty word or pattern, which bash
# ignores): unlike an empty value, no value the user sets is taken for the
# hook's own (`HISTIGNORE=` to clear it, `HISTCONTROL=erasedups` alone).
__tmux_audit_adopt_history_settings() {
    if [[ ${HISTCONTROL-} != "${__tmux_audit_histcontrol_set-}" ]]; then
        __tmux_audit_histcontrol=${HISTCONTROL-}
        HISTCONTROL=:
        [[ :$__tmux_audit_histcontrol: == *:erasedups:* ]] && HISTCONTROL=erasedups:
        __tmux_audit_histcontrol_set=$HISTCONTROL
    fi
    if [[ ${HISTIGNORE-} != "${__tmux_audit_histignore_set-}" ]]; then
        __tmux_audit_histignore=${HISTIGNORE-}
        HISTIGNORE=:
        __tmux_audit_histignore_set=$HISTIGNORE
    fi
}

# $1: history number, $2: command text, $3: `alone` when the entry before
# it is not known (only the rules that need none apply). Drops the entry
# from the history list when the user's HISTCONTROL/HISTIGNORE would never
# have let it in; for a line of several entries, adds it to those to drop
# once all are seen (__tmux_audit_drops, see __tmux_audit_entries_of_line).
__tmux_audit_forget() {
    local text=$2 drop='' pattern patterns
    case :$__tmux_audit_histcontrol: in
    *:ignorespace:* | *:ignoreboth:*) [[ $text == ' '* ]] && drop=1 ;;
    esac
    case :$__tmux_audit_histcontrol: in
    *:erasedups:*) ;; # bash already erased the earlier copy: keep this one
    *:ignoredups:* | *:ignoreboth:*) [[ -z ${3-} && $text == "$__tmux_audit_prev" ]] && drop=1 ;;
    esac
    if [[ -z $drop && -n $__tmux_audit_histignore ]]; then
        IFS=: read -r -a patterns <<<"$__tmux_audit_histignore"
        # shellcheck disable=SC2053 # a HISTIGNORE entry is a pattern
        for pattern in "${patterns[@]}"; do
            if [[ $pattern == '&' ]]; then
                # (With erasedups, bash erased the earlier copy: keep this one.)
                [[ -z ${3-} && $text == "$__tmux_audit_prev" && :$__tmux_audit_histcontrol: != *:erasedups:* ]] && drop=1
            elif [[ $text == $pattern ]]; then
                drop=1
            fi
        done
    fi
    if [[ -z $drop ]]; then
        __tmux_audit_prev=$text
    elif [[ -n ${__tmux_audit_in_line-} ]]; then
        __tmux_audit_drops+=("$1")
    else
        builtin history -d "$1"
    fi
}

# The recorder this shell writes its commands to (see `tmux-audit recorder`):
# the FIFO it reads and its pid, both empty when there is none (it could not
# start, or it has gone: then each command starts a recorder of its own).
# `init` starts it as it prints this script, for the shell whose pid is
# __tmux_audit_for. Loaded in another shell (the copy of the script in the
# cache directory, read by the faster rc line), the hook starts one in the
# background at the first prompt, and takes its pid from the lock beside its
# FIFO (__tmux_audit_pending) at the first command it finds it running; the
# commands before that each start a recorder of their own.
__tmux_audit_for=@TMUX_AUDIT_FOR@
__tmux_audit_fifo=@TMUX_AUDIT_FIFO@
__tmux_audit_recorder=@TMUX_AUDIT_RECORDER@
__tmux_audit_recorders=@TMUX_AUDIT_RECORDERS@
__tmux_audit_pending=
# True when the recorder is there to take a frame: its process still reads
# this FIFO (a process that has ended, even one not yet reaped, has no
# descriptors; a pid used again reads something else). When it has gone,
# says so in the log (unless it left on purpose, removing its FIFO: its
# binary was replaced) and stops using it.
__tmux_audit_recorder_alive() {
    if [[ -z $__tmux_audit_recorder ]]; then
        [[ -n $__tmux_audit_pending ]] || return 1
        # Started in the background: running once its lock holds the pid
        # of a process that reads this FIFO.
        { builtin read -r __tmux_audit_recorder <"$__tmux_audit_pending"; } 2>/dev/null
        if [[ -n $__tmux_audit_recorder && /proc/$__tmux_audit_recorder/fd/0 -ef $__tmux_audit_fifo ]]; then
            __tmux_audit_pending=
            return 0
        fi
        __tmux_audit_recorder=''
        return 1
    fi
    [[ /proc/$__tmux_audit_recorder/fd/0 -ef $__tmux_audit_fifo ]] && return 0
    if [[ -p $__tmux_audit_fifo ]]; then
        __tmux_audit_log_line "the recorder of this shell (pid $__tmux_audit_recorder) is gone: the commands run as it went may be missing (a gap in their numbers); each command now starts a recorder of its own; hint: open a new shell to get a recorder again"
    fi
    __tmux_audit_recorder='' __tmux_audit_fifo=''
    return 1
}

# $1: exit status, $2: start, $3: end (empty: unknown), $4: H, or E to have
# the entry's text back (__tmux_audit_echoed_entry), or T to send the text
# read already (__tmux_audit_text, or none when __tmux_audit_number is
# empty). Writes the command's frame to the recorder with builtins only (no
# fork): the header, then the history entry as `history 1` prints it (the
# recorder checks its number and takes the text), or the text, ended by a
# NUL. The FIFO is opened read-write: the open never blocks and a recorder
# gone costs no SIGPIPE. False when the recorder was gone before or after
# the write: the caller records the command itself (the same session and
# number: stored once).
__tmux_audit_stream() {
    __tmux_audit_recorder_alive || return 1
    local HISTTIMEFORMAT=''
    # On descriptor 3: with `set -T`, what a DEBUG trap of the user's prints
    # goes to stdout, here /dev/null, not into the frame.
    # (As few writes as can be: each wakes the recorder.)
    {
        if [[ $4 != T ]]; then
            builtin printf 'TA1\0%s\0%s\0%s\0%s\0%s\0\0%s\0%s%s\0' "$__tmux_audit_session" \
                "$__tmux_audit_seq" "$1" "$2" "$3" "$__tmux_audit_cwd" "$4" "${__tmux_audit_hist:-0}" >&3
            builtin history 1 >&3
            builtin printf '\0' >&3
        elif [[ -n $__tmux_audit_number ]]; then
            builtin printf 'TA1\0%s\0%s\0%s\0%s\0%s\0\0%s\0T\0%s\0' "$__tmux_audit_session" \
                "$__tmux_audit_seq" "$1" "$2" "$3" "$__tmux_audit_cwd" "$__tmux_audit_text" >&3
        else
            builtin printf 'TA1\0%s\0%s\0%s\0%s\0%s\0\0%s\0U\0' "$__tmux_audit_session" \
                "$__tmux_audit_seq" "$1" "$2" "$3" "$__tmux_audit_cwd" >&3
        fi
    } 3<>"$__tmux_audit_fifo" >/dev/null 2>/dev/null
    __tmux_audit_recorder_alive
}

# True when the user's HISTCONTROL/HISTIGNORE need the text of the command
# just run, to remove it from the history list (__tmux_audit_forget).
__tmux_audit_needs_text() {
    [[ -n $__tmux_audit_histignore ]] && return 0
    case :$__tmux_audit_histcontrol: in
    *:ignorespace:* | *:ignoredups:* | *:ignoreboth:*) return 0 ;;
    esac
    return 1
}

# Sets __tmux_audit_number and __tmux_audit_text as __tmux_audit_last_entry
# does, from the recorder's answer to the frame just written (an E frame),
# read with builtins: no fork. False when no answer comes within a second
# (the recorder is stuck) or the text was too long to be sent back: the
# caller then reads the entry itself. Answers this shell gave up waiting
# for are skipped: each names the session and command it answers.
__tmux_audit_echoed_entry() {
    local first reply='' name='' answer='' tries=8
    __tmux_audit_number='' __tmux_audit_text=''
    # Only the wait for an answer's first byte has a timeout: the rest came
    # in the same write, up to its one NUL (`read -t` costs a few
    # microseconds a byte).
    {
        while ((tries--)) && [[ $name != "$__tmux_audit_session/$__tmux_audit_seq" ]]; do
            IFS= builtin read -r -N 1 -t 1 -u 9 first &&
                IFS= builtin read -r -d '' -u 9 reply || return 1
            reply=$first$reply
            name=${reply%% *}
        done
    } 9<>"${__tmux_audit_fifo%.fifo}.reply" 2>/dev/null
    [[ $name == "$__tmux_audit_session/$__tmux_audit_seq" ]] || return 1
    answer=${reply#* }
    case $answer in
    T*) __tmux_audit_number=$__tmux_audit_hist __tmux_audit_text=${answer#T} ;;
    N) ;;
    *) return 1 ;;
    esac
}

# Sets __tmux_audit_number and __tmux_audit_text to the history entry of the
# command line just run; both empty when it is not in the list (history off).
__tmux_audit_last_entry() {
    local HISTTIMEFORMAT='' entry
    __tmux_audit_number='' __tmux_audit_text=''
    # Only the entry: not what a DEBUG trap of the user's prints in here
    # (with `set -T`).
    entry=$({ builtin history 1 >&3; } 3>&1 >/dev/null)
    entry=${entry#"${entry%%[^[:space:]]*}"}
    __tmux_audit_number=${entry%%[^0-9]*}
    if [[ -n $__tmux_audit_number && $__tmux_audit_number == "$__tmux_audit_hist" ]]; then
        # `history 1` prints the number, a `*` or a blank, a blank, the text.
        __tmux_audit_text=${entry:${#__tmux_audit_number}+2}
    else
        __tmux_audit_number=
    fi
}

# Sets __tmux_audit_texts to the texts of the last $1 entries of the history
# list (fewer when it holds fewer), one per element, the first numbered
# __tmux_audit_listed_from; empty when the listing does not read as one.
# One `history` in a command substitution (a fork: only for a command line
# of several entries), whose entries are told apart by the stamp this
# shell puts before each text (HISTTIMEFORMAT, a strftime format), split
# on its control characters in one pass.
__tmux_audit_list_entries() {
    local HISTTIMEFORMAT=$__tmux_audit_stamp list parts head header piece j
    __tmux_audit_texts=() __tmux_audit_listed_from=
    # Only the entries: not what a DEBUG trap of the user's prints in here.
    list=$({ builtin history "$1" >&3; } 3>&1 >/dev/null 2>/dev/null)
    # Split on the stamp's ends alone: no other field separator, no
    # globbing, until this function returns.
    local - IFS=$'\001'
    set -f
    # shellcheck disable=SC2206 # split on purpose, globbing off
    parts=($list)
    # Each entry: its number (`%5d`), a `*` (edited) or a blank, a blank,
    # the stamp, the text, a newline.
    ((${#parts[@]} >= 3 && ${#parts[@]} % 2)) || return 0
    head=${parts[0]%??}
    head=${head##*[[:blank:]]}
    [[ -n $head && $head != *[!0-9]* ]] || return 0
    __tmux_audit_listed_from=$head
    head=${parts[0]}
    for ((j = 1; j < ${#parts[@]}; j += 2)); do
        builtin printf -v header '%5d' "$((__tmux_audit_listed_from + ${#__tmux_audit_texts[@]}))"
        if [[ $head != "$header"[\ \*]' ' || ${parts[j]} != "${__tmux_audit_stamp:1:-1}" ]]; then
            __tmux_audit_texts=() __tmux_audit_listed_from=
            return 0
        fi
        piece=${parts[j + 1]}
        if ((j + 2 < ${#parts[@]})); then
            __tmux_audit_texts+=("${piece%$'\n'*}")
            head=${piece##*$'\n'}
        else
            __tmux_audit_texts+=("$piece")
        fi
    done
}

# True when history entry text $1 runs nothing: a line of blanks, or (with
# interactive_comments on) only a comment. bash lists such a line but shows
# no PS0 for it.
__tmux_audit_no_command() {
    local plain=${1#"${1%%[![:space:]]*}"}
    [[ -z $plain ]] || { [[ $plain == '#'* ]] && shopt -q interactive_comments; }
}

# True when command text $1 runs `history -r` or `history -n` (also as
# `-rn`, or among other commands of the line), which read entries in
# after the line's own: entries it did not run.
__tmux_audit_reads_history() {
    local - words i IFS=$' \t\n'
    set -f
    # shellcheck disable=SC2206 # split into words on purpose, no globbing
    words=(${1//[;&|()\{\}\`]/ })
    for ((i = 0; i + 1 < ${#words[@]}; i++)); do
        [[ ${words[i]} == history && ${words[i + 1]} == -*[rn]* && ${words[i + 1]} != *[!a-zA-Z-]* ]] && return 0
    done
    return 1
}

# For a command line of several entries: texts[0..n] the texts of its
# commands (those PS0 set aside, then the last), left empty when they
# cannot be told for sure; and, before anything is recorded, what the
# user's settings keep out of the history list dropped among the line's
# entries. The line's entries run from just after what the list held at
# the last prompt (__tmux_audit_histcmd; what a later PROMPT_COMMAND entry
# such as `history -n` added comes before them) to the last (HISTCMD - 1
# at this prompt). The numbers PS0 saw name the commands' entries when
# they rise one after another within that span, the entries between and
# after them run nothing, and theirs do. A line of one command (one PS0)
# whose entry is followed by others that run something: either `fc` ran
# the edited commands (bash's entries for them replace the `fc` line's:
# its text is theirs, one per line), or a `history -r`/`-n`
# read them in (its text is its own entry's; those read in are left as
# they are, as bash leaves them). Else (erasedups dropped an earlier
# copy, a command of the line ran `history -d`, `-s` or `set +o history`,
# `shopt -u cmdhist` split a command, the line is longer than HISTSIZE) no
# text is told, and only the rules that need no order (a leading space,
# HISTIGNORE's patterns) are applied, to the entries since the last prompt.
__tmux_audit_entries_of_line() {
    local j k=0 known=1 several='' number text first last=$((${1:-0} - 1)) since=$__tmux_audit_histcmd
    local __tmux_audit_texts __tmux_audit_listed_from __tmux_audit_in_line=1 __tmux_audit_drops=()
    ((last >= hist)) || last=$hist
    [[ -n $since ]] || since=${hists[0]:-$hist}
    # erasedups drops the earlier copies of a line as it is added, so the
    # line's entries may have moved down, about one place per command.
    [[ :$__tmux_audit_histcontrol: == *:erasedups:* ]] && since=$((since - n - 1))
    ((since > 0)) || since=1
    shopt -q cmdhist || known=
    for ((j = 0; j < n; j++)); do
        ((hists[j] >= since && hists[j] < (j + 1 < n ? hists[j + 1] : hist))) || known=
    done
    ((hist >= since && last - since < 65536)) || return 0
    __tmux_audit_list_entries "$((last - since + 1))"
    local from=$__tmux_audit_listed_from count=${#__tmux_audit_texts[@]}
    ((count && from + count - 1 == last)) || return 0
    # The line's entries pushed out of the list (HISTSIZE): not told.
    ((hist >= from)) || known=
    for ((j = 0; j < n; j++)); do
        ((hists[j] >= from)) || known=
    done
    ((since >= from)) || since=$from
    first=$since
    if [[ -n $known ]]; then
        # Each entry from the first command's on: a command's, or one that
        # runs nothing; before it, those that run nothing are the line's.
        first=${hists[0]:-$hist}
        for ((number = first; number <= last && known; number++)); do
            text=${__tmux_audit_texts[number - from]}
            if ((number == (k < n ? hists[k] : hist) && k <= n)); then
                # (An `fc` whose edited text starts with a comment: told
                # by the entries after it, below.)
                __tmux_audit_no_command "$text" && ((n > 0)) && known=
                texts[k++]=$text
            elif __tmux_audit_no_command "$text"; then
                :
            elif ((n == 0)); then
                several=1
            else
                known=
            fi
        done
        ((k == n + 1)) || known=
        # One command whose entry runs nothing, and nothing after it that does.
        [[ -z $several ]] && ((n == 0)) && __tmux_audit_no_command "${texts[0]-}" && known=
        while [[ -n $known ]] && ((first > since)) &&
            __tmux_audit_no_command "${__tmux_audit_texts[first - 1 - from]}"; do
            ((first--))
        done
    fi
    local read_in='' was_read=''
    if [[ -n $known && -n $several ]]; then
        if __tmux_audit_reads_history "${texts[0]}"; then
            # The next command's entry comes after those read in.
            read_in=${__tmux_audit_texts[last - from]} was_read=1
            last=$hist
        elif [[ :$__tmux_audit_histcontrol: == *:erasedups:* ]] || ((last - hist >= 64)); then
            # fc's, unsure: erasedups may have moved them below the
            # command's own, and a read-in by another name (an alias) is
            # taken for fc; more than an edited text holds is taken for one.
            known=
        else
            for ((number = hist + 1; number <= last; number++)); do
                texts[0]+=$'\n'${__tmux_audit_texts[number - from]}
            done
        fi
    fi
    if [[ -n $known ]]; then
        for ((number = first; number <= last; number++)); do
            __tmux_audit_forget "$number" "${__tmux_audit_texts[number - from]}"
        done
        [[ -n $was_read ]] && __tmux_audit_prev=$read_in
    else
        texts=()
        for ((number = since; number <= last; number++)); do
            __tmux_audit_forget "$number" "${__tmux_audit_texts[number - from]}" alone
        done
        # The entry before the next one is not known: no duplicate of it.
        __tmux_audit_prev=$__tmux_audit_stamp
    fi
    for ((j = ${#__tmux_audit_drops[@]} - 1; j >= 0; j--)); do
        builtin history -d "${__tmux_audit_drops[j]}"
        ((__tmux_audit_drops[j] < hist)) && ((hist--))
    done
    __tmux_audit_forgotten=1
}

# Records the commands of the command line that just ended: those PS0 set
# aside, then the last. $1: the last one's exit status, $2: when it ended
# (empty: unknown), $3: HISTCMD at the prompt (empty: unknown). A line of
# one entry (one command, the last in the list) is the common case, at
# every prompt: its text is read by the recorder, and its entry dropped
# once it is recorded, if the user's settings say so.
__tmux_audit_record_line() {
    if ((__tmux_audit_ended == 0)) && { [[ ${3-x} == *[!0-9]* ]] || (($3 - 1 <= __tmux_audit_hist)); }; then
        set -- "$1" "$__tmux_audit_start" "$2" "$__tmux_audit_hist" "$__tmux_audit_cwd"
        # First: whatever happens next, this command is done.
        __tmux_audit_start=''
        __tmux_audit_record "$@"
        return 0
    fi
    local i n=$__tmux_audit_ended hist=$__tmux_audit_hist start=$__tmux_audit_start
    local starts=("${__tmux_audit_ended_start[@]}") ends=("${__tmux_audit_ended_end[@]}")
    local hists=("${__tmux_audit_ended_hist[@]}") statuses=("${__tmux_audit_ended_status[@]}")
    local cwds=() texts=() __tmux_audit_forgotten=
    # (The first command's directory is the prompt's: PS0 notes the others'.)
    for ((i = 0; i <= n; i++)); do
        cwds[i]=${__tmux_audit_cwds[i]-$__tmux_audit_cwd}
    done
    __tmux_audit_start='' __tmux_audit_ended=0 __tmux_audit_ended_start=() __tmux_audit_ended_end=()
    __tmux_audit_ended_hist=() __tmux_audit_ended_status=() __tmux_audit_cwds=()
    # Several commands, or entries after the last one's (comment lines).
    __tmux_audit_entries_of_line "${3-}"
    for ((i = 0; i < n; i++)); do
        __tmux_audit_record "${statuses[i]}" "${starts[i]}" "${ends[i]}" \
            "${texts[i]+${hists[i]}}" "${cwds[i]-$__tmux_audit_cwd}" "${texts[i]-}"
    done
    if [[ -n ${texts[n]+known} ]]; then
        __tmux_audit_record "$1" "$start" "$2" "$hist" "${cwds[n]-$__tmux_audit_cwd}" "${texts[n]}"
    else
        __tmux_audit_record "$1" "$start" "$2" "$hist" "${cwds[n]-$__tmux_audit_cwd}"
    fi
}

# Records one command. $1: its exit status, $2: when it started (0:
# unknown), $3: when it ended (empty: unknown), $4: its history number
# (empty: not known), $5: where it started; $6, for a command PS0 set
# aside: its text, read already (the recorder reads the last entry's).
__tmux_audit_record() {
    local rc out start=$2 end=$3 __tmux_audit_hist=$4 __tmux_audit_cwd=$5
    local __tmux_audit_number __tmux_audit_text
    __tmux_audit_seq=$((__tmux_audit_seq + 1))
    if [[ -z $start || $start == 0 || -z $end ]]; then
        start='' end=''
    fi
    # The recorder started when the hook loaded: no process for this command.
    # When the entry's text is needed, the recorder sends it back, if it
    # has a FIFO to answer on (a recorder of an older version, shared after
    # `exec bash`, has none, and would set aside a frame that asks).
    local ask=H
    if (($# > 5)); then
        __tmux_audit_number=$4 __tmux_audit_text=$6
        ask=T
    elif [[ -z ${__tmux_audit_forgotten-} ]] && __tmux_audit_needs_text && [[ -p ${__tmux_audit_fifo%.fifo}.reply ]]; then
        ask=E
    fi
    if __tmux_audit_stream "$1" "$start" "$end" "$ask"; then
        if [[ $ask == E ]]; then
            __tmux_audit_echoed_entry || __tmux_audit_last_entry
            [[ -n $__tmux_audit_number ]] && __tmux_audit_forget "$__tmux_audit_number" "$__tmux_audit_text"
        fi
        return 0
    fi
    (($# > 5)) || __tmux_audit_last_entry
    local record=("$__tmux_audit_bin" record --shell bash --session "$__tmux_audit_session"
        --seq "$__tmux_audit_seq" --exit "$1" --cwd "$__tmux_audit_cwd")
    if [[ -n $start ]]; then
        record+=(--start-us "$start" --end-us "$end")
    fi
    # The recorder runs in a command substitution: no job of the hook is left
    # in the shell's job table for `jobs` in a later PROMPT_COMMAND entry or
    # the prompt, and `$!` is kept. With no redirection of its own, bash execs
    # it in the substitution's process (no further fork); the redirections
    # around it leave the shell's stdin, where the recorder finds the
    # terminal, alone. The text goes through a pipe, never a file: a
    # here-string on descriptor 9 when bash makes it a pipe (1,023 characters
    # are at most 4,092 bytes, within any pipe), else a pipeline.
    # shellcheck disable=SC2034 # out: nothing; the assignment gives the status
    if [[ -z $__tmux_audit_number ]]; then
        # History is off (`set +o history`, HISTSIZE=0): the text is gone,
        # but that a command ran, when, where and how it ended is recorded.
        { out=$("${record[@]}" --text-unavailable); } 2>/dev/null
        rc=$?
    elif [[ -n $__tmux_audit_herepipe && -z ${BASH_COMPAT-} ]] && ((${#__tmux_audit_text} < 1024)); then
        { out=$(TMUX_AUDIT_TEXT_FD=9 "${record[@]}"); } 9<<<"$__tmux_audit_text" 2>/dev/null
        rc=$?
    else
        { out=$(builtin printf '%s\n' "$__tmux_audit_text" | "${record[@]}"); } 2>/dev/null
        rc=$?
    fi
    # (Not when the line's entries went through __tmux_audit_forget.)
    [[ -n $__tmux_audit_number && -z ${__tmux_audit_forgotten-} ]] && __tmux_audit_forget "$__tmux_audit_number" "$__tmux_audit_text"
    # The recorder logs its own errors (exit 2); anything else is logged here.
    if ((rc != 0 && rc != 2)); then
        __tmux_audit_failed "$rc"
    fi
}

# $1: the recorder's exit status. One line to the log; when the binary cannot
# be run at all, once per shell.
__tmux_audit_failed() {
    local what
    # shellcheck disable=SC2016 # the hints show the lines to type
    if (($1 == 126 || $1 == 127)); then
        [[ -n $__tmux_audit_warned ]] && return 0
        __tmux_audit_warned=1
        what='bash cannot run %s (exit %s); hint: reinstall tmux-audit, or re-run `eval "$(tmux-audit init bash)"` so the hook points at its new path'
    else
        what='%s failed (exit %s) and could not say why: the record of this command may be lost; hint: run `tmux-audit doctor`'
    fi
    # shellcheck disable=SC2059 # the format is one of the two above
    __tmux_audit_log_line "$(printf "$what" "$__tmux_audit_bin" "$1")"
}

# $1: one line for the log file, written with the time and `hook:`.
__tmux_audit_log_line() {
    (
        umask 077
        command mkdir -p -- "${__tmux_audit_log%/*}"
        printf '%(%Y-%m-%dT%H:%M:%S%z)T hook: %s\n' -1 "$1" >>"$__tmux_audit_log"
    ) 2>/dev/null
}

# Keeps the hook the first thing that runs at a prompt, whatever was loaded
# after it: first in PROMPT_COMMAND (string or array, as the user has it),
# or, once bash-preexec has put its own entry first, first among its
# precmd_functions. So the end time is taken, and a history entry the user's
# settings would have kept out is removed, before any other hook runs.
__tmux_audit_stay_first() {
    local entry=$__tmux_audit_entry text e others=()
    if [[ ${PROMPT_COMMAND[*]-} == *__bp_precmd_invoke_cmd* || ${PROMPT_COMMAND[*]-} == *__bp_install* ]]; then
        [[ ${precmd_functions[0]-} == __tmux_audit_precmd ]] && return 0
        for e in ${precmd_functions[@]+"${precmd_functions[@]}"}; do
            [[ $e == __tmux_audit_precmd ]] || others+=("$e")
        done
        precmd_functions=(__tmux_audit_precmd "${others[@]}")
    elif [[ ${PROMPT_COMMAND@a} == *a* ]]; then
        [[ ${PROMPT_COMMAND[0]-} == "$entry" ]] && return 0
        for e in "${PROMPT_COMMAND[@]}"; do
            [[ $e == "$entry" ]] || others+=("$e")
        done
        PROMPT_COMMAND=("$entry" "${others[@]}")
    else
        [[ ${PROMPT_COMMAND-} == "$entry;"* || ${PROMPT_COMMAND-} == "$entry" ]] && return 0
        text=${PROMPT_COMMAND-}
        text=${text//"$entry;"/}
        text=${text//"$entry"/}
        __tmux_audit_prepend "$text"
    fi
}

# $1: the user's PROMPT_COMMAND string; puts the hook's entry before it.
__tmux_audit_prepend() {
    local text=$1
    # A string that starts with `;` (after blanks) cannot follow another `;`.
    [[ $text =~ ^[[:space:]]*\; ]] && text=${text#*;}
    # shellcheck disable=SC2128,SC2178 # a string here, as the user had it
    PROMPT_COMMAND=$__tmux_audit_entry${text:+;$text}
}

# Runs at each prompt, from PROMPT_COMMAND (or bash-preexec's precmd).
__tmux_audit_precmd() {
    local status=$? end=${EPOCHREALTIME:+${EPOCHREALTIME//[^0-9]/}}
    __tmux_audit_armed=0
    if [[ -n $__tmux_audit_start ]]; then
        if [[ -n $__tmux_audit_mark ]]; then
            builtin printf '\e]133;D;ta=%s/%s\a' "$__tmux_audit_session" "$((__tmux_audit_seq + 1 + __tmux_audit_ended))" 2>/dev/null || :
        fi
        __tmux_audit_record_line "$status" "$end" "${HISTCMD-}"
    fi
    # What the history list holds now: the next line's entries come after.
    __tmux_audit_histcmd=${HISTCMD-}
    [[ $__tmux_audit_histcmd != *[!0-9]* ]] || __tmux_audit_histcmd=
    [[ -n $__tmux_audit_first_prompt ]] && __tmux_audit_at_first_prompt
    # Where the next command starts.
    __tmux_audit_cwd=$PWD
    __tmux_audit_adopt_history_settings
    # PS0 is expanded only with promptvars on; off, it would show the code.
    # (Matching PS0 against the hook's parts costs tens of microseconds:
    # only when its length says it changed since.)
    if shopt -q promptvars; then
        if [[ ! -v PS0 ]] || ((${#PS0} != __tmux_audit_ps0_length)); then
            if [[ ${PS0-} != "$__tmux_audit_ps0_head"* ]]; then
                PS0=${PS0-}
                PS0=$__tmux_audit_ps0_head${PS0//"$__tmux_audit_ps0_head"/}
            fi
            [[ $PS0 == *"$__tmux_audit_ps0"* ]] || PS0+=$__tmux_audit_ps0
            __tmux_audit_ps0_length=${#PS0}
        fi
    else
        __tmux_audit_ps0_length=-1
        PS0=${PS0-}
        PS0=${PS0//"$__tmux_audit_ps0_head"/}
        PS0=${PS0//"$__tmux_audit_ps0"/}
    fi
    __tmux_audit_stay_first
    # From PROMPT_COMMAND, $? is handed on to the entries after it
    # (bash-preexec sets it for each of its functions itself).
    [[ -n ${FUNCNAME[1]-} ]] || return "$status"
}

# A command line that ends the shell (`make deploy; exit 4`, ` mysql -p…;
# exit`) never reaches the next prompt: it is recorded on the way out, with
# the shell's exit status, and, before bash writes the history file, its
# entry is removed if the user's settings would have kept it out. The EXIT
# trap the user had at the first prompt still runs, after this, and sees
# the shell's exit status as `$?`.
__tmux_audit_on_exit() {
    local __tmux_audit_status=$? __tmux_audit_end=${EPOCHREALTIME:+${EPOCHREALTIME//[^0-9]/}}
    if [[ -n $__tmux_audit_start ]]; then
        if [[ -n $__tmux_audit_mark ]]; then
            builtin printf '\e]133;D;ta=%s/%s\a' "$__tmux_audit_session" "$((__tmux_audit_seq + 1 + __tmux_audit_ended))" 2>/dev/null || :
        fi
        # As the first command of an `&&` list: a failed record ends no
        # `set -e` shell before the user's trap has run.
        __tmux_audit_record_line "$__tmux_audit_status" "$__tmux_audit_end" "${HISTCMD-}" && :
    fi
    if [[ -n $__tmux_audit_exit_trap ]]; then
        # As the first command of an `&&` list: no ERR trap, no `set -e` exit.
        __tmux_audit_status_is "$__tmux_audit_status" && :
        eval "$__tmux_audit_exit_trap"
    fi
}
__tmux_audit_status_is() {
    return "$1"
}

# At the first prompt, not as the hook loads: the hook's EXIT trap is set,
# chaining the user's, the recorder is started, unless `init` started it
# for this shell, and the keys of edit-and-execute-command are taken (see
# __tmux_audit_edit_and_run). bash gives a trap's text and its key
# bindings back only through a command substitution, a fork, which the
# recorder's start shares, and which a shell that shows no prompt never
# pays; a command starts only after a prompt, and the user's EXIT trap set
# before then (also later in ~/.bashrc) still runs, after the hook's. The
# recorder is started in the background from the command substitution's
# subshell: the shell waits for no exec, and it is no job of the shell
# (nothing in `jobs`, `$!` kept).
# Loaded again (~/.bashrc sourced again: __tmux_audit_first_prompt=again),
# the same at the next prompt: an EXIT trap set since is chained, and a
# recorder that has gone is started again.
__tmux_audit_first_prompt=1
__tmux_audit_at_first_prompt() {
    local start=1 exit_trap
    if [[ -n $__tmux_audit_recorder && ($__tmux_audit_for == "$$" || $__tmux_audit_first_prompt == again) ]]; then
        start=
    else
        __tmux_audit_recorder=''
        __tmux_audit_fifo=$__tmux_audit_recorders/bash-$$.fifo
        __tmux_audit_pending=$__tmux_audit_recorders/bash-$$.lock
    fi
    # Only the trap's text comes out (descriptor 3): not what a DEBUG trap
    # of the user's prints in here (with `set -T`). The recorder holds none
    # of the substitution's pipe, which is read to its end, and gets the
    # shell's stdin (its terminal, which it records) instead of the
    # /dev/null a job gets here.
    __tmux_audit_first_prompt=
    exit_trap=$(
        {
            __tmux_audit_edit_key_answers
            builtin printf '%s' "$__tmux_audit_stamp" >&3
            builtin trap -p EXIT >&3
            if [[ -n $start ]]; then
                "$__tmux_audit_bin" recorder --shell bash --shell-pid "$$" 0<&0 >/dev/null 2>&1 3>&- &
            fi
        } 3>&1 >/dev/null
    )
    __tmux_audit_bind_edit_keys "${exit_trap%%"$__tmux_audit_stamp"*}"
    exit_trap=${exit_trap#*"$__tmux_audit_stamp"}
    exit_trap=${exit_trap#"trap -- "}
    exit_trap=${exit_trap%" EXIT"}
    # `trap -p` quotes the command for the shell: unquote it once.
    [[ -n $exit_trap ]] && eval "exit_trap=$exit_trap"
    # The hook's own, still in place when loaded again: nothing new to chain.
    [[ $exit_trap == __tmux_audit_on_exit ]] || __tmux_audit_exit_trap=$exit_trap
    builtin trap __tmux_audit_on_exit EXIT
}

# What `C-x C-e` (vi: `v`) edits, bash runs inside the line editor, with
# neither PS0 nor a prompt: no hook would see it. So each key bound to
# readline's edit-and-execute-command or vi-edit-and-execute-command is
# bound instead to the same thing done as a typed line (a readline macro of
# two keys of the hook's): the first opens the line in the same editor (the
# command bash's `fc` would run) and puts what it saved in the line; the
# second is then accept-line, and the edited text runs as if typed, through
# PS0 and the next prompt. If the editor fails (`:cq`), the second key does
# nothing: the line stays as it was and nothing runs. The keys are taken
# at the first prompt (__tmux_audit_at_first_prompt), so bindings made
# later in ~/.bashrc count; keys bound to anything else are left alone.
# The hook's own keys start with `\C-x\C-_`, which bash leaves unbound.
__tmux_audit_edit_key='\C-x\C-_Te\a'
__tmux_audit_vi_edit_key='\C-x\C-_Tv\a'
__tmux_audit_accept_key='\C-x\C-_Ta\a'
# $1: `emacs` or `vi`, for the editor bash's own binding would start when
# neither VISUAL nor EDITOR is set (vi only, in POSIX mode).
__tmux_audit_edit_and_run() {
    local __tmux_audit_status=$? __tmux_audit_editor __tmux_audit_file __tmux_audit_text __tmux_audit_map __tmux_audit_tty=
    # What the command substitutions below print is all that comes out: no
    # DEBUG trap of the user's runs in them (`set -T`), until the return.
    local -
    set +T
    for __tmux_audit_map in ${__tmux_audit_edit_keymaps[@]+"${__tmux_audit_edit_keymaps[@]}"}; do
        builtin bind -m "$__tmux_audit_map" "\"$__tmux_audit_accept_key\": \"\"" 2>/dev/null
    done
    __tmux_audit_editor=${VISUAL:-${EDITOR:-$1}}
    [[ $1 == vi && -o posix ]] && __tmux_audit_editor='vi'
    # Private to the user (mktemp: 0600), named as bash's `fc` names its own.
    if __tmux_audit_file=$(command mktemp "${TMPDIR:-/tmp}/bash-fc.XXXXXXXXXX" 2>/dev/null); then
        # The editor gets the terminal as bash's own binding gives it: out
        # of the line editor's raw mode (what readline turns off, on), and
        # back after.
        __tmux_audit_tty=$(command stty -g 2>/dev/null) &&
            command stty icanon echo icrnl 2>/dev/null
        if builtin printf '%s\n' "${READLINE_LINE-}" >"$__tmux_audit_file" 2>/dev/null &&
            eval "$__tmux_audit_editor \"\$__tmux_audit_file\"" && [[ -r $__tmux_audit_file ]]; then
            # Not `$(<file)`: in a key binding, bash 5.2 then splits the
            # accepted line's first command at each blank (`echo a` runs
            # `echo`, then `a`). `read` stops at EOF (status 1) or a NUL.
            IFS= builtin read -r -d '' __tmux_audit_text <"$__tmux_audit_file" 2>/dev/null
            while [[ $__tmux_audit_text == *$'\n' ]]; do
                __tmux_audit_text=${__tmux_audit_text%$'\n'}
            done
            READLINE_LINE=$__tmux_audit_text
            READLINE_POINT=${#READLINE_LINE}
            for __tmux_audit_map in ${__tmux_audit_edit_keymaps[@]+"${__tmux_audit_edit_keymaps[@]}"}; do
                builtin bind -m "$__tmux_audit_map" "\"$__tmux_audit_accept_key\": accept-line" 2>/dev/null
            done
        fi
        [[ -z $__tmux_audit_tty ]] || command stty "$__tmux_audit_tty" 2>/dev/null
        command rm -f -- "$__tmux_audit_file" 2>/dev/null
    else
        # Nothing opens and the line stays: the log says why.
        __tmux_audit_log_line "C-x C-e: cannot make a temporary file in ${TMPDIR:-/tmp}; hint: set TMPDIR to a directory you can write"
    fi
    return "$__tmux_audit_status"
}
# Which keys invoke each of the two, as `bind -q` answers, on descriptor 3
# (in the command substitution of __tmux_audit_at_first_prompt, whose fork
# it shares; each command's own redirection: not what a DEBUG trap of the
# user's prints, with `set -T`): each line starts with the keymap and the
# kind (e or v), and ends with the keys, each in double quotes, `, `
# between them (and `, ...` after the fifth).
__tmux_audit_edit_key_answers() {
    local map
    for map in emacs vi-insert vi-command; do
        builtin printf '\n%s e ' "$map" >&3
        builtin bind -m "$map" -q edit-and-execute-command >&3
        builtin printf '\n%s v ' "$map" >&3
        builtin bind -m "$map" -q vi-edit-and-execute-command >&3
    done 2>/dev/null
}
# $1: those answers. Binds each key they name to the hook's two; asks
# again while an answer had more than five keys.
__tmux_audit_edit_keymaps=()
__tmux_audit_bind_edit_keys() {
    local line map kind keys key to more=
    while IFS=' ' read -r map kind line; do
        case $kind in
        e) to=$__tmux_audit_edit_key ;;
        v) to=$__tmux_audit_vi_edit_key ;;
        *) continue ;;
        esac
        [[ $line == *'"'* ]] || continue
        keys=\"${line#*\"}
        [[ $keys == *', ...' ]] && more=1
        keys=${keys%', ...'}
        keys=${keys%.}
        if [[ " ${__tmux_audit_edit_keymaps[*]} " != *" $map "* ]]; then
            __tmux_audit_edit_keymaps+=("$map")
            # As the first command of an `&&` list: under `set -e` or with
            # an ERR trap, a status of 1 in there (`read` at EOF, the `$?`
            # handed back) neither ends the shell nor fires the trap.
            builtin bind -m "$map" -x "\"$__tmux_audit_edit_key\": __tmux_audit_edit_and_run emacs && :"
            builtin bind -m "$map" -x "\"$__tmux_audit_vi_edit_key\": __tmux_audit_edit_and_run vi && :"
            builtin bind -m "$map" "\"$__tmux_audit_accept_key\": \"\""
        fi
        while [[ -n $keys ]]; do
            key=${keys%%'", "'*}
            if [[ $key == "$keys" ]]; then
                keys=
            else
                key+=\"
                keys=\"${keys#*'", "'}
            fi
            builtin bind -m "$map" "$key: \"$to$__tmux_audit_accept_key\""
        done
    done <<<"$1"
    [[ -z $more ]] || __tmux_audit_bind_edit_keys "$(__tmux_audit_edit_key_answers 3>&1 >/dev/null)"
} 2>/dev/null

__tmux_audit_adopt_history_settings
if shopt -q promptvars; then
    PS0=$__tmux_audit_ps0_head${PS0-}$__tmux_audit_ps0
fi
if [[ -v PROMPT_COMMAND && ${PROMPT_COMMAND@a} == *a* ]]; then
    PROMPT_COMMAND=("$__tmux_audit_entry" "${PROMPT_COMMAND[@]}")
else
    __tmux_audit_prepend "${PROMPT_COMMAND-}"
fi

elif [[ $- == *i* && -n ${__tmux_audit_session-} && -z ${__tmux_audit_first_prompt-} ]] &&
    declare -F __tmux_audit_at_first_prompt >/dev/null; then
    # Loaded again in the same shell: see __tmux_audit_at_first_prompt.
    __tmux_audit_first_prompt=again
fi

# >>> tmux-audit pick: Ctrl-R (left out by `tmux-audit init bash --no-bind`)
# Ctrl-R opens `tmux-audit pick` on the terminal, starting from the line typed
# so far; the command picked replaces the line, not run (Esc leaves the line
# as it was). The binding prints nothing, keeps $?, works under `set -u`, and
# leaves the line alone when the binary is gone.
if [[ $- == *i* ]]; then
__tmux_audit_pick_bin=@TMUX_AUDIT_BIN@
__tmux_audit_pick() {
    local __tmux_audit_status=$? __tmux_audit_picked
    # Only what `pick` prints is taken: no DEBUG trap of the user's runs in
    # the command substitution (`set -T`), until the return.
    local -
    set +T
    if [[ -x $__tmux_audit_pick_bin ]]; then
        # The `.` keeps a picked command's trailing newlines from `$(…)`,
        # and is printed only when a command was picked.
        __tmux_audit_picked=$("$__tmux_audit_pick_bin" pick --query="${READLINE_LINE-}" && printf .)
        if [[ $__tmux_audit_picked == *. ]]; then
            READLINE_LINE=${__tmux_audit_picked%.}
            READLINE_POINT=${#READLINE_LINE}
        fi
    fi
    return "$__tmux_audit_status"
}
# (As the first command of an `&&` list: handing back a `$?` that is not 0
# neither ends a `set -e` shell nor fires an ERR trap.)
bind -m emacs -x '"\C-r": __tmux_audit_pick && :' 2>/dev/null
bind -m vi-insert -x '"\C-r": __tmux_audit_pick && :' 2>/dev/null
fi
# <<< tmux-audit pick: Ctrl-R
