module github.com/elector-dev/elector/tools/monitoring

go 1.26.0

require go.yaml.in/yaml/v3 v3.0.4
