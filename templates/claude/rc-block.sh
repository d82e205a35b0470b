{% if wrapper_dir %}
case ":$PATH:" in *:{{ wrapper_dir|q }}:*) ;; *) PATH={{ wrapper_dir|q }}:"$PATH"; export PATH ;; esac
{% else %}
[ -f {{ env_file|q }} ] && . {{ env_file|q }}
{% endif %}
