# bash completion for switchyard: subcommands, their options, and the words of `switchyard ctl`
# commands. Install: copy to /usr/share/bash-completion/completions/switchyard (or source it
# from ~/.bashrc).

_switchyard() {
    local cur prev
    cur="${COMP_WORDS[COMP_CWORD]}"
    prev="${COMP_WORDS[COMP_CWORD-1]}"
    COMPREPLY=()

    local commands="demo run check ctl echo help --help --version"
    if [ "$COMP_CWORD" -eq 1 ]; then
        COMPREPLY=($(compgen -W "$commands" -- "$cur"))
        return
    fi

    case "$prev" in
        --config) COMPREPLY=($(compgen -f -X '!*.json*' -- "$cur")); compopt -o plusdirs 2>/dev/null; return ;;
        --socket) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --port|--workers|--admin-port|--listen|--name|--delay-ms|--etcd|--prefix) return ;;
    esac

    case "${COMP_WORDS[1]}" in
        demo)  COMPREPLY=($(compgen -W "--port --workers --admin-port --help" -- "$cur")) ;;
        run)   COMPREPLY=($(compgen -W "--config --help" -- "$cur")) ;;
        check) COMPREPLY=($(compgen -W "--config --help" -- "$cur")) ;;
        echo)  COMPREPLY=($(compgen -W "--listen --name --delay-ms --help" -- "$cur")) ;;
        ctl)   _switchyard_ctl ;;
    esac
}

# `switchyard ctl [options] COMMAND...`: options first, then a command of one or two words.
_switchyard_ctl() {
    local i=2 words=()
    while [ "$i" -lt "$COMP_CWORD" ]; do
        case "${COMP_WORDS[i]}" in
            --socket|--config|--etcd|--prefix) i=$((i + 2)); continue ;;
            -*) ;;
            *) words+=("${COMP_WORDS[i]}") ;;
        esac
        i=$((i + 1))
    done
    if [ "${#words[@]}" -eq 0 ]; then
        COMPREPLY=($(compgen -W "--socket --config --json --wait --etcd --prefix --help
            help show flip set endpoint reset begin commit abort reload quit rollout" -- "$cur"))
        return
    fi
    if [ "${#words[@]}" -eq 1 ]; then
        case "${words[0]}" in
            show)     COMPREPLY=($(compgen -W "routes upstreams state stats shadow experiment fleet rollout guards" -- "$cur")) ;;
            set)      COMPREPLY=($(compgen -W "live weights mirror" -- "$cur")) ;;
            endpoint) COMPREPLY=($(compgen -W "add remove drain" -- "$cur")) ;;
            rollout)  COMPREPLY=($(compgen -W "start pause resume promote abort" -- "$cur")) ;;
            help)     COMPREPLY=($(compgen -W "show flip set endpoint reset begin commit abort reload quit rollout" -- "$cur")) ;;
        esac
        return
    fi
    case "$cur" in
        --*) COMPREPLY=($(compgen -W "--bake --revert-if-error-rate --revert-if-p99-ms --revert-if-p99-ratio
            --min-requests --no-warmup --steps --preset --step-seconds --max-step-seconds --max-error-rate
            --max-error-rate-ratio --max-p99-ratio --baseline" -- "$cur")) ;;
    esac
}

complete -F _switchyard switchyard
