"""The browser side: the /whoami page and the web console at /ui/. Calls the authority; renders Jinja2 templates."""
