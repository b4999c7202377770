# tmux-audit for every interactive fish: copy to
# /usr/share/fish/vendor_conf.d/tmux-audit.fish (or /etc/fish/conf.d/).
if status is-interactive; and command -q tmux-audit
    tmux-audit init fish | source
end
