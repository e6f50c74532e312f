// Optional Azure Database for PostgreSQL Flexible Server: conversations shared by every replica.
// The SQLAlchemy URL (asyncpg, TLS required) goes to Key Vault as `database-url`.
param serverName string
param location string
param tags object = {}
param keyVaultName string
param administratorLogin string = 'slipway'
@secure()
param administratorPassword string
param databaseName string = 'slipway'
param skuName string = 'Standard_B1ms'
@allowed([
  'Burstable'
  'GeneralPurpose'
  'MemoryOptimized'
])
param skuTier string = 'Burstable'
param storageSizeGB int = 32
param version string = '16'

resource server 'Microsoft.DBforPostgreSQL/flexibleServers@2024-08-01' = {
  name: serverName
  location: location
  tags: tags
  sku: {
    name: skuName
    tier: skuTier
  }
  properties: {
    version: version
    administratorLogin: administratorLogin
    administratorLoginPassword: administratorPassword
    storage: {
      storageSizeGB: storageSizeGB
    }
    backup: {
      backupRetentionDays: 7
      geoRedundantBackup: 'Disabled'
    }
    highAvailability: {
      mode: 'Disabled'
    }
  }
}

resource database 'Microsoft.DBforPostgreSQL/flexibleServers/databases@2024-08-01' = {
  parent: server
  name: databaseName
  properties: {
    charset: 'UTF8'
    collation: 'en_US.utf8'
  }
}

// 0.0.0.0-0.0.0.0 is Azure's rule for "Azure services" (Container Apps egress); no public client IPs.
resource allowAzure 'Microsoft.DBforPostgreSQL/flexibleServers/firewallRules@2024-08-01' = {
  parent: server
  name: 'AllowAzureServices'
  properties: {
    startIpAddress: '0.0.0.0'
    endIpAddress: '0.0.0.0'
  }
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource databaseUrl 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'database-url'
  properties: {
    value: 'postgresql+asyncpg://${administratorLogin}:${uriComponent(administratorPassword)}@${server.properties.fullyQualifiedDomainName}:5432/${databaseName}?ssl=require'
  }
  dependsOn: [
    database
    allowAzure
  ]
}

output fqdn string = server.properties.fullyQualifiedDomainName
output secretName string = databaseUrl.name
