// The Slipway container app: external HTTPS ingress on port 8000, image pulled from ACR and secrets
// read from Key Vault by the user-assigned identity, probes on /healthz and /readyz, and HTTP
// concurrency scaling between minReplicas and maxReplicas.
param name string
param location string
param tags object = {}
param environmentId string
param identityId string
param registryServer string
param image string
param keyVaultUri string
param useDatabaseSecret bool = false
param useRedisSecret bool = false
@description('vCPU per replica, as a string because Bicep has no decimals (Consumption: 0.25-4.0).')
param cpu string = '1.0'
@description('Memory per replica; Consumption needs 2Gi per vCPU (e.g. 1.0 -> 2Gi).')
param memory string = '2Gi'
@minValue(0)
@maxValue(300)
param minReplicas int = 1
@minValue(1)
@maxValue(300)
param maxReplicas int = 5
@description('In-flight requests per replica before another replica is added.')
param concurrentRequests int = 4
param extraEnv array = []

// Key Vault references: the value never leaves the vault; the identity reads it at revision start.
var secretNames = concat(['api-keys'], useDatabaseSecret ? ['database-url'] : [], useRedisSecret ? ['redis-url'] : [])
var secrets = map(secretNames, secretName => {
  name: secretName
  keyVaultUrl: '${keyVaultUri}secrets/${secretName}'
  identity: identityId
})

var secretEnv = concat(
  [
    {
      name: 'SLIPWAY_API_KEYS'
      secretRef: 'api-keys'
    }
  ],
  useDatabaseSecret ? [
    {
      name: 'SLIPWAY_DATABASE_URL'
      secretRef: 'database-url'
    }
  ] : [],
  useRedisSecret ? [
    {
      name: 'SLIPWAY_REDIS_URL'
      secretRef: 'redis-url'
    }
  ] : []
)

var plainEnv = [
  {
    name: 'SLIPWAY_LOG_JSON'
    value: 'true'
  }
  {
    name: 'SLIPWAY_PORT'
    value: '8000'
  }
]

resource app 'Microsoft.App/containerApps@2024-03-01' = {
  name: name
  location: location
  tags: tags
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    managedEnvironmentId: environmentId
    configuration: {
      // Multiple: the deploy workflow starts each revision at 0% traffic, smoke-tests it, then moves traffic.
      activeRevisionsMode: 'Multiple'
      maxInactiveRevisions: 10
      ingress: {
        external: true
        targetPort: 8000
        transport: 'auto'
        allowInsecure: false
        traffic: [
          {
            latestRevision: true
            weight: 100
          }
        ]
      }
      registries: [
        {
          server: registryServer
          identity: identityId
        }
      ]
      secrets: secrets
    }
    template: {
      terminationGracePeriodSeconds: 30
      containers: [
        {
          name: 'slipway'
          image: image
          resources: {
            cpu: json(cpu)
            memory: memory
          }
          env: concat(plainEnv, secretEnv, extraEnv)
          probes: [
            {
              type: 'Liveness'
              httpGet: {
                path: '/healthz'
                port: 8000
              }
              periodSeconds: 10
              timeoutSeconds: 3
              failureThreshold: 3
            }
            {
              type: 'Readiness'
              httpGet: {
                path: '/readyz'
                port: 8000
              }
              periodSeconds: 5
              timeoutSeconds: 3
              failureThreshold: 3
            }
            {
              // Generous: up to 60 + 10 x 30 s = 6 minutes for the model to load before a restart.
              type: 'Startup'
              httpGet: {
                path: '/readyz'
                port: 8000
              }
              initialDelaySeconds: 60
              periodSeconds: 30
              timeoutSeconds: 5
              failureThreshold: 10
            }
          ]
        }
      ]
      scale: {
        minReplicas: minReplicas
        maxReplicas: maxReplicas
        rules: [
          {
            name: 'http-concurrency'
            http: {
              metadata: {
                concurrentRequests: string(concurrentRequests)
              }
            }
          }
        ]
      }
    }
  }
}

output name string = app.name
output fqdn string = app.properties.configuration.ingress.fqdn
output latestRevisionName string = app.properties.latestRevisionName
