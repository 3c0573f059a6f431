"""The fleet page: a FastAPI app the Airflow API server mounts under /retrain (see plugins/retrain_plugin.py).

`app` holds the routes and the auth checks, `facts` reads Airflow's metadata, `pages` writes the HTML.
Hidden from Airflow's plugin loader by plugins/.airflowignore: it is imported as a package by name.
"""

# Where the API server mounts the app; its links to Airflow's own pages are relative to what comes before.
MOUNT = "/retrain"
