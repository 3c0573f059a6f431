# syntax=docker/dockerfile:1.7
# Two images from one file, both from requirements.txt (the list the local set-up installs), both told the
# commit they are built from (the images have no .git; every model version records it as its code version):
#   docker build --build-arg RETRAIN_CODE_VERSION=$(git rev-parse HEAD) --target airflow  -t retrain-airflow:0.1.0  .
#   docker build --build-arg RETRAIN_CODE_VERSION=$(git rev-parse HEAD) --target training -t retrain-training:0.1.0 .
# The training image derives from the Airflow image on purpose: the pod and the worker then resolve
# the very same library versions, so features fitted in a pod score identically on a worker.
# Pin it by digest when you build (README "Deploy on Kubernetes": resolving a digest):
#   --build-arg AIRFLOW_IMAGE=apache/airflow:3.3.2-python3.11@sha256:<digest>
ARG AIRFLOW_IMAGE=apache/airflow:3.3.2-python3.11

# checkov:skip=CKV_DOCKER_7: the base image is ARG AIRFLOW_IMAGE, a version tag checked against requirements.txt (tests/unit/test_deploy_files.py) and pinned by digest at build time; checkov cannot read an ARG
# checkov:skip=CKV_DOCKER_2: no HEALTHCHECK in the image: Kubernetes probes the Airflow components (Helm chart) and ignores Docker's HEALTHCHECK; a training pod is a batch job bounded by activeDeadlineSeconds
FROM ${AIRFLOW_IMAGE} AS airflow
# The official image installs as the non-root `airflow` user (uid 50000, gid 0) into its user site.
USER 50000:0
WORKDIR /opt/airflow
COPY --chown=airflow:0 requirements.txt /opt/retrain/requirements.txt
# Pinning apache-airflow in the same pip call keeps pip from up- or down-grading the image's Airflow.
RUN pip install --no-cache-dir -r /opt/retrain/requirements.txt
COPY --chown=airflow:0 pyproject.toml README.md /opt/retrain/
COPY --chown=airflow:0 include/retrain /opt/retrain/include/retrain
RUN pip install --no-cache-dir --no-deps /opt/retrain
# DAGs, operators, specs and suites baked into the image (no git-sync, no shared DAG volume).
COPY --chown=airflow:0 dags /opt/airflow/dags
COPY --chown=airflow:0 plugins /opt/airflow/plugins
COPY --chown=airflow:0 include/models /opt/airflow/include/models
COPY --chown=airflow:0 include/expectations /opt/airflow/include/expectations
# Pools and default connections: `python /opt/airflow/scripts/apply_airflow_settings.py /opt/airflow/airflow_settings.yaml`.
COPY --chown=airflow:0 airflow_settings.yaml /opt/airflow/airflow_settings.yaml
COPY --chown=airflow:0 scripts/apply_airflow_settings.py /opt/airflow/scripts/apply_airflow_settings.py
ENV RETRAIN_SPECS_DIR=/opt/airflow/include/models \
    RETRAIN_EXPECTATIONS_DIR=/opt/airflow/include/expectations \
    RETRAIN_ARTIFACTS_ROOT=/opt/airflow/retrain-artifacts \
    RETRAIN_TRAINING_BACKEND=kubernetes \
    PYTHONPATH=/opt/airflow/plugins
# Last, so a new commit rebuilds only this layer. An image that cannot say which code it runs is refused:
# retrain.train.code_version() would otherwise record the package version (0.1.0) on every model.
ARG RETRAIN_CODE_VERSION
RUN test -n "${RETRAIN_CODE_VERSION}" \
    || { echo "pass --build-arg RETRAIN_CODE_VERSION=\$(git rev-parse HEAD)" >&2; exit 1; }
ENV RETRAIN_CODE_VERSION=${RETRAIN_CODE_VERSION}

FROM airflow AS training
# The pod runs `python -m retrain.train ...` (cmds/arguments come from the operator); no Airflow
# entrypoint, no DB check. Root filesystem is read-only in the pod: /tmp and HOME are emptyDir volumes.
ENV HOME=/home/retrain \
    MPLCONFIGDIR=/tmp/matplotlib
WORKDIR /tmp
USER 50000:0
ENTRYPOINT ["/usr/bin/dumb-init", "--"]
CMD ["python", "-m", "retrain.train", "--help"]
