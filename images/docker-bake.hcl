# The one build entry point of the images (docker buildx bake), run from the
# repository root:
#
#   docker buildx bake -f images/docker-bake.hcl                    # all three, tagged VERSION
#   docker buildx bake -f images/docker-bake.hcl --push operator    # one, pushed
#
# VERSION is the chart's appVersion (charts/rlaif-operator/Chart.yaml; a test keeps them equal), so
# the chart deploys the operator it was released with and the operator's default workload images.
# Bases are pinned by digest in each Dockerfile; refresh them with
# `docker buildx imagetools inspect python:3.11-slim` (or the CUDA tag) and update the FROM lines.

variable "REGISTRY" {
  default = "ghcr.io/rlaif"
}

variable "VERSION" {
  default = "0.1.0"
}

group "default" {
  targets = ["operator", "labeler", "trainer"]
}

target "_common" {
  context   = "."
  platforms = ["linux/amd64"]
  labels = {
    "org.opencontainers.image.source"  = "https://github.com/rlaif/rlaif"
    "org.opencontainers.image.version" = "${VERSION}"
  }
}

target "operator" {
  inherits   = ["_common"]
  dockerfile = "images/operator/Dockerfile"
  tags       = ["${REGISTRY}/operator:${VERSION}"]
  platforms  = ["linux/amd64", "linux/arm64"]
}

target "labeler" {
  inherits   = ["_common"]
  dockerfile = "images/labeler/Dockerfile"
  tags       = ["${REGISTRY}/labeler:${VERSION}"]
}

target "trainer" {
  inherits   = ["_common"]
  dockerfile = "images/trainer/Dockerfile"
  tags       = ["${REGISTRY}/trainer:${VERSION}"]
}
