// Log Analytics: where the Container Apps environment sends console and system logs.
param name string
param location string
param tags object = {}
@minValue(30)
param retentionInDays int = 30

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
  }
}

output workspaceName string = workspace.name
output workspaceId string = workspace.id
