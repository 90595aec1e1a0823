// The network probe of the real node's NetworkPolicy tests: standard library only.
module storeplatform.local/deploy/netpol/probe

go 1.26

toolchain go1.26.10
