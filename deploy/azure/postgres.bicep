// Writer enrolments: Azure Database for PostgreSQL Flexible Server, and the service's connection
// URL stored in Key Vault (the app reads it through a Key Vault reference; it never appears in the
// template's outputs or the app's configuration).
targetScope = 'resourceGroup'

param name string
param location string
param tags object
param skuName string
@allowed(['Burstable', 'GeneralPurpose', 'MemoryOptimized'])
param tier string
@minValue(32)
param storageSizeGB int
param version string

@description('The server admin. The service connects as it; a narrower role needs SQL run once by hand (README.md).')
param administratorLogin string = 'hwradmin'

@secure()
@description('From Key Vault (main.bicep reads it with getSecret); letters and digits only, so the URL needs no escaping.')
param administratorPassword string

@description('The Key Vault that receives the connection URL.')
param vaultName string

param databaseName string = 'hwr'

resource server 'Microsoft.DBforPostgreSQL/flexibleServers@2024-08-01' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: skuName
    tier: tier
  }
  properties: {
    version: version
    administratorLogin: administratorLogin
    administratorLoginPassword: administratorPassword
    authConfig: {
      passwordAuth: 'Enabled'
      activeDirectoryAuth: 'Disabled'
    }
    storage: {
      storageSizeGB: storageSizeGB
      autoGrow: 'Enabled'
    }
    backup: {
      backupRetentionDays: 7
      geoRedundantBackup: 'Disabled'
    }
    highAvailability: {
      mode: 'Disabled'
    }
    // A Consumption environment without a VNet has no fixed outbound address: the server admits
    // Azure-internal clients only (the firewall rule below) and TLS only. Private access needs a
    // VNet-integrated environment (README.md).
    network: {
      publicNetworkAccess: 'Enabled'
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

// 0.0.0.0-0.0.0.0 is Azure's convention for "connections from Azure services", not the internet.
resource azureServices 'Microsoft.DBforPostgreSQL/flexibleServers/firewallRules@2024-08-01' = {
  parent: server
  name: 'AllowAllAzureServicesAndResourcesWithinAzureIps'
  properties: {
    startIpAddress: '0.0.0.0'
    endIpAddress: '0.0.0.0'
  }
}

resource requireTls 'Microsoft.DBforPostgreSQL/flexibleServers/configurations@2024-08-01' = {
  parent: server
  name: 'require_secure_transport'
  properties: {
    value: 'on'
    source: 'user-override'
  }
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: vaultName
}

resource writerDbUrl 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'writer-db-url'
  dependsOn: [database, azureServices, requireTls]
  properties: {
    contentType: 'postgresql URL (HWR_WRITER_DB)'
    value: 'postgresql://${administratorLogin}:${administratorPassword}@${server.properties.fullyQualifiedDomainName}:5432/${databaseName}?sslmode=require'
  }
}

output fqdn string = server.properties.fullyQualifiedDomainName
// Versionless: the app follows the secret's latest version.
output writerDbSecretUri string = writerDbUrl.properties.secretUri
