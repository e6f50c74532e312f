// Optional Azure Cache for Redis: per-key rate limits shared by every replica. TLS only (port 6380);
// the URL with its access key goes to Key Vault as `redis-url`.
param name string
param location string
param tags object = {}
param keyVaultName string
@allowed([
  'Basic'
  'Standard'
  'Premium'
])
param skuName string = 'Basic'
@minValue(0)
@maxValue(6)
param capacity int = 0

resource redis 'Microsoft.Cache/redis@2023-08-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    sku: {
      name: skuName
      family: skuName == 'Premium' ? 'P' : 'C'
      capacity: capacity
    }
    enableNonSslPort: false
    minimumTlsVersion: '1.2'
    redisVersion: '6'
  }
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource redisUrl 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'redis-url'
  properties: {
    value: 'rediss://:${redis.listKeys().primaryKey}@${redis.properties.hostName}:6380/0'
  }
}

output hostName string = redis.properties.hostName
output secretName string = redisUrl.name
