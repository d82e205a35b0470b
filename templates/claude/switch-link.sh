{# Point the stable command at one installed version: an upgrade and a rollback are both this switch. #}
mkdir -p {{ link_dir|q }}
if [ -e {{ link|q }} ] && [ ! -L {{ link|q }} ]; then mv -f {{ link|q }} {{ (install_dir ~ "/claude.unmanaged")|q }}; fi
ln -sfn {{ binary|q }} {{ (link ~ ".ollama-claude.new")|q }}
mv -f {{ (link ~ ".ollama-claude.new")|q }} {{ link|q }}
