# bash completion for envrun(1)                            -*- shell-script -*-
#
# Completes the verbs, the global options and each verb's own options (those
# of `envrun help VERB`), file and directory values, the command after
# `exec`, files as the ARGs of `test`, and service names.  Service
# names come from `envrun config --json` of the file given with -f/--file or,
# without one, of ./environment.yml or ./environment.yaml when one is in the
# current directory: `config` only reads the file and starts nothing.  Any
# error gives no names, silently.  Works with or without bash-completion.

# _envrun_services ENVRUN FILE: the service names of FILE, one per line.
_envrun_services()
{
    local envrun=$1 file=$2
    if [[ -z $file ]]; then
        if [[ -f environment.yml ]]; then
            file=environment.yml
        elif [[ -f environment.yaml ]]; then
            file=environment.yaml
        else
            return 0
        fi
    fi
    [[ -f $file && -r $file ]] || return 0
    envrun=$(type -P -- "$envrun") || return 0
    local -a bound=()
    type -P timeout >/dev/null && bound=(timeout 2)
    # `config --json` prints the services' names as the keys of "services",
    # two spaces deeper than it; a name never needs escaping in JSON.
    "${bound[@]}" "$envrun" --file "$file" config --json </dev/null 2>/dev/null |
        awk '/^  "services": [{]/ { s = 1; next }
             s && /^  [}]/ { exit }
             s && /^    "[^"]+": / { sub(/^    "/, ""); sub(/".*/, ""); print }' 2>/dev/null
    return 0
}

_envrun()
{
    local cur prev words cword
    if declare -F _get_comp_words_by_ref >/dev/null 2>&1; then
        _get_comp_words_by_ref -n =: cur prev words cword
    else
        words=("${COMP_WORDS[@]}")
        cword=$COMP_CWORD
        cur=${COMP_WORDS[COMP_CWORD]}
        prev=${COMP_WORDS[COMP_CWORD - 1]}
    fi

    local verbs='exec test up down status logs ls env start stop restart validate config graph help'
    local globals='-f --file -p --project --state-dir -q --quiet -v --verbose --no-color -h --help --version'

    # Find the verb and the file, and whether exec's CMD (or test's ARGs) has
    # begun.
    local i w verb= vi=0 file= cmd_at=0 skip=0 prev_opt=
    for ((i = 1; i < cword; i++)); do
        w=${words[i]}
        if ((skip)); then
            skip=0
            [[ $prev_opt == file ]] && file=$w
            continue
        fi
        prev_opt=
        if [[ ($verb == exec || $verb == test) && $w != -* ]]; then
            cmd_at=$i
            break
        fi
        case $w in
        --)
            if [[ $verb == exec || $verb == test ]]; then
                cmd_at=$((i + 1))
                break
            fi
            ;;
        --file=*) file=${w#--file=} ;;
        --file) skip=1 prev_opt=file ;;
        -f)
            if [[ $verb == logs ]]; then :; else skip=1 prev_opt=file; fi
            ;;
        -p | --project | --state-dir) skip=1 ;;
        --timeout | --report | --junit | --timeline)
            [[ $verb == exec || $verb == test ]] && skip=1
            ;;
        -n | --lines)
            [[ $verb == logs ]] && skip=1
            ;;
        -*) ;;
        *)
            if [[ -z $verb ]]; then
                verb=$w
                vi=$i
            fi
            ;;
        esac
    done

    # test's ARGs are the test command's own: files.
    if ((cmd_at)) && [[ $verb == test ]]; then
        COMPREPLY=($(compgen -f -- "$cur"))
        return 0
    fi
    # After exec's CMD starts, complete as for that command.
    if ((cmd_at)); then
        if ((cmd_at == cword)) || ! declare -F _command_offset >/dev/null 2>&1; then
            if ((cmd_at == cword)); then
                COMPREPLY=($(compgen -c -- "$cur"))
            else
                COMPREPLY=($(compgen -f -- "$cur"))
            fi
        else
            _command_offset "$cmd_at"
        fi
        return 0
    fi

    # The value of an option.
    case $prev in
    -f | --file)
        # After `logs`, -f is its own --follow.
        if [[ $prev == --file || $verb != logs ]] || ((vi > cword - 1)); then
            COMPREPLY=($(compgen -f -X '!*.yml' -- "$cur") $(compgen -f -X '!*.yaml' -- "$cur")
                $(compgen -d -- "$cur"))
            return 0
        fi
        ;;
    --state-dir)
        COMPREPLY=($(compgen -d -- "$cur"))
        return 0
        ;;
    -p | --project | -n | --lines | --timeout)
        return 0
        ;;
    --report | --junit)
        COMPREPLY=($(compgen -f -- "$cur"))
        return 0
        ;;
    --timeline)
        COMPREPLY=($(compgen -f -X '!*.svg' -- "$cur") $(compgen -d -- "$cur"))
        return 0
        ;;
    esac
    # Without bash-completion, `--file=x` arrives as three words.
    if [[ $prev == = && ${words[cword - 2]} == --file ]]; then
        COMPREPLY=($(compgen -f -X '!*.yml' -- "$cur") $(compgen -f -X '!*.yaml' -- "$cur")
            $(compgen -d -- "$cur"))
        return 0
    fi
    case $cur in
    --file=*)
        local v=${cur#--file=}
        COMPREPLY=($(compgen -f -X '!*.yml' -- "$v") $(compgen -f -X '!*.yaml' -- "$v")
            $(compgen -d -- "$v"))
        return 0
        ;;
    esac

    local opts=
    case $verb in
    '')
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W "$globals" -- "$cur"))
        else
            COMPREPLY=($(compgen -W "$verbs" -- "$cur"))
        fi
        return 0
        ;;
    exec | test) opts='--timeout --report --junit --timeline --abort-on-failure --allow-partial --' ;;
    up) opts='-d --detach' ;;
    down) opts='--keep' ;;
    status | ls | env | config) opts='--json' ;;
    logs) opts='-f --follow -n --lines --timestamps' ;;
    help)
        ((cword == vi + 1)) && COMPREPLY=($(compgen -W "$verbs" -- "$cur"))
        return 0
        ;;
    esac

    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$opts $globals" -- "$cur"))
        return 0
    fi
    case $verb in
    exec)
        COMPREPLY=($(compgen -c -- "$cur"))
        ;;
    test)
        COMPREPLY=($(compgen -f -- "$cur"))
        ;;
    up | logs | start | stop | restart)
        COMPREPLY=($(compgen -W "$(_envrun_services "${words[0]}" "$file")" -- "$cur"))
        ;;
    esac
    return 0
} &&
    complete -F _envrun envrun

# ex: filetype=sh
