// Slipway on Azure Container Apps: everything one environment (dev, prod, ...) needs, in one resource group.
//
//   az deployment group create -g <rg> -f infra/main.bicep -p @infra/parameters/<env>.json \
//     -p apiKeys=<keys> [-p postgresAdminPassword=<pw>] [-p image=<acr>.azurecr.io/slipway:<tag>]
//
// The first run has no image yet (ACR is empty): it creates the registry, identities, Key Vault,
// Log Analytics, the environment and the optional databases; with `image` set it also creates the app.
// infra/README.md walks through it from an empty subscription.
targetScope = 'resourceGroup'

@description('Short name used in every resource name.')
@minLength(3)
@maxLength(12)
param appName string = 'slipway'

@description('Environment name (dev, prod, ...): part of resource names and tags.')
@minLength(2)
@maxLength(8)
param environmentName string

param location string = resourceGroup().location

@description('Full image reference; empty = do not create the container app yet (first run).')
param image string = ''

@secure()
@description('Comma-separated static API keys for SLIPWAY_API_KEYS; empty keeps the Key Vault secret as it is.')
param apiKeys string = ''

param cpu string = '1.0'
param memory string = '2Gi'
param minReplicas int = 1
param maxReplicas int = 5
param concurrentRequests int = 4

@description('Azure Database for PostgreSQL Flexible Server for conversations (needed for more than one replica).')
param deployPostgres bool = false
@secure()
param postgresAdminPassword string = ''
param postgresSkuName string = 'Standard_B1ms'
param postgresSkuTier string = 'Burstable'

@description('Azure Cache for Redis for rate limits shared across replicas.')
param deployRedis bool = false
param redisSkuName string = 'Basic'
param redisCapacity int = 0

@description('owner/name of the GitHub repository whose `production` environment may deploy; empty = no CI identity.')
param githubRepository string = ''

param tags object = {}

@description('Continuous evaluation: a nightly Container Apps Job running python -m eval against the app.')
param deployEvalJob bool = false
param evalCron string = '0 3 * * *'
param evalFailUnder string = 'meteor=0.15'
param mlflowTrackingUri string = ''
param alertEmail string = ''

var suffix = take(uniqueString(subscription().id, resourceGroup().id, appName, environmentName), 6)
var allTags = union(tags, {
  app: appName
  environment: environmentName
})
var baseName = '${appName}-${environmentName}'

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    name: 'log-${baseName}'
    location: location
    tags: allTags
  }
}

module appIdentity 'modules/identity.bicep' = {
  name: 'app-identity'
  params: {
    name: 'id-${baseName}'
    location: location
    tags: allTags
  }
}

module registry 'modules/registry.bicep' = {
  name: 'registry'
  params: {
    name: 'cr${replace(appName, '-', '')}${environmentName}${suffix}'
    location: location
    tags: allTags
    pullPrincipalId: appIdentity.outputs.principalId
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'key-vault'
  params: {
    name: 'kv-${take(appName, 8)}-${environmentName}-${suffix}'
    location: location
    tags: allTags
    readerPrincipalId: appIdentity.outputs.principalId
    apiKeys: apiKeys
  }
}

module postgres 'modules/postgres.bicep' = if (deployPostgres) {
  name: 'postgres'
  params: {
    serverName: 'psql-${baseName}-${suffix}'
    location: location
    tags: allTags
    keyVaultName: keyVault.outputs.name
    administratorPassword: postgresAdminPassword
    skuName: postgresSkuName
    skuTier: postgresSkuTier
  }
}

module redis 'modules/redis.bicep' = if (deployRedis) {
  name: 'redis'
  params: {
    name: 'redis-${baseName}-${suffix}'
    location: location
    tags: allTags
    keyVaultName: keyVault.outputs.name
    skuName: redisSkuName
    capacity: redisCapacity
  }
}

module environment 'modules/environment.bicep' = {
  name: 'environment'
  params: {
    name: 'cae-${baseName}'
    location: location
    tags: allTags
    workspaceName: monitoring.outputs.workspaceName
  }
}

module app 'modules/containerapp.bicep' = if (!empty(image)) {
  name: 'container-app'
  params: {
    name: 'ca-${baseName}'
    location: location
    tags: allTags
    environmentId: environment.outputs.id
    identityId: appIdentity.outputs.id
    registryServer: registry.outputs.loginServer
    image: image
    keyVaultUri: keyVault.outputs.uri
    useDatabaseSecret: deployPostgres
    useRedisSecret: deployRedis
    cpu: cpu
    memory: memory
    minReplicas: minReplicas
    maxReplicas: maxReplicas
    concurrentRequests: concurrentRequests
  }
  dependsOn: [
    postgres
    redis
  ]
}

module github 'modules/github-oidc.bicep' = if (!empty(githubRepository)) {
  name: 'github-oidc'
  params: {
    name: 'id-${baseName}-github'
    location: location
    tags: allTags
    githubRepository: githubRepository
    registryName: registry.outputs.name
  }
}

module evalJob 'modules/evaljob.bicep' = if (deployEvalJob && !empty(image)) {
  name: 'continuous-eval'
  params: {
    name: 'caj-${baseName}-eval'
    location: location
    tags: allTags
    environmentId: environment.outputs.id
    identityId: appIdentity.outputs.id
    registryServer: registry.outputs.loginServer
    image: image
    keyVaultUri: keyVault.outputs.uri
    appUrl: 'https://${app.outputs.fqdn}'
    cronExpression: evalCron
    failUnder: evalFailUnder
    mlflowTrackingUri: mlflowTrackingUri
    alertEmail: alertEmail
  }
}

output containerAppName string = 'ca-${baseName}'
output appUrl string = empty(image) ? '' : 'https://${app.outputs.fqdn}'
output registryName string = registry.outputs.name
output registryLoginServer string = registry.outputs.loginServer
output keyVaultName string = keyVault.outputs.name
output keyVaultUri string = keyVault.outputs.uri
output environmentId string = environment.outputs.id
output appIdentityId string = appIdentity.outputs.id
output githubClientId string = empty(githubRepository) ? '' : github.outputs.clientId
