# The matches zsh's own completion system offers for a command line, as a user pressing TAB gets
# them: an interactive `zsh -f -i` under zsh/zpty loads compinit and the completion script, and a
# compadd wrapper prints every match it is given (the technique of zsh-capture-completion).
# usage: zsh -f zsh-complete.zsh source FILE 'tend exec '   (the script sourced after compinit)
#        zsh -f zsh-complete.zsh fpath DIR 'tend exec '     (DIR/_tend found by compinit in $fpath)
# prints "<<TEND-HIT>>word" per match; exits 4 when the script did not load, 5 on a timeout.
zmodload zsh/zpty || exit 3
zpty z zsh -f -i
zpty -w z "PROMPT=''"
[[ $1 == fpath ]] && zpty -w z "fpath=(${(q)2} \$fpath)"
zpty -w z "autoload -U compinit && compinit -u -D"
# the markers are spelled in two pieces so the echo of these lines never matches them
[[ $1 == source ]] && zpty -w z "source ${(q)2} || print -r -- '<<TEND''-LOAD-FAILED>>'"
zpty -w z "bindkey '^I' complete-word"
zpty -w z 'tend_mark() { print -r -- "<<TEND""-MARK>>" }; compprefuncs=( tend_mark ); comppostfuncs=( tend_mark exit )'
zpty -w z 'compadd() { if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then builtin compadd "$@"; return; fi; local -a __hits; builtin compadd -A __hits "$@"; local h; for h in $__hits; do print -r -- "<<TEND""-HIT>>$h"; done }'
zpty -w z "$3"$'\t'
local line out='' deadline=$(( SECONDS + 30 ))
while (( SECONDS < deadline )); do
  if zpty -r -t z line 2>/dev/null; then
    out+=$line
    [[ $out == *'<<TEND-MARK>>'*'<<TEND-MARK>>'* || $out == *'<<TEND-LOAD-FAILED>>'* ]] && break
  else
    sleep 0.05
  fi
done
zpty -d z
print -r -- ${(F)${(M)${(f)out//$'\r'/}:#*TEND-*}}
[[ $out == *'<<TEND-LOAD-FAILED>>'* ]] && exit 4
[[ $out == *'<<TEND-MARK>>'*'<<TEND-MARK>>'* ]] || exit 5
exit 0
