{% if wrapper_dir %}
contains -- {{ wrapper_dir|fishq }} $PATH; or set -gx PATH {{ wrapper_dir|fishq }} $PATH
{% else %}
test -f {{ env_file|fishq }}; and source {{ env_file|fishq }}
{% endif %}
