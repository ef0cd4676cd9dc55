// Handwriting service on Azure Container Apps: registry, logs, Key Vault, metrics, environment,
// identity, writer database, app.
//
// Deployed twice per release by .github/workflows/deploy.yml (see README.md here):
//   1. without containerImage: everything but the app and its database (registry first, so there is
//      somewhere to push; Key Vault first, so the pipeline can make sure its secrets exist);
//   2. with containerImage=<registry>/hwr@<digest>: the app as a new revision with 0 % of the
//      traffic (stableRevision keeps it all), smoke-tested on its own URL, then promoted by the
//      pipeline.
//
// Safe by default: the API token (HWR_API_TOKEN) always comes from Key Vault, so the public
// ingress never serves /predict, /read, /v2 or /writers unauthenticated, and a missing secret fails
// the revision instead of starting it open; writer enrolments live in PostgreSQL (credentials in
// Key Vault) or the writer endpoints are off, never on a replica's own disk.
targetScope = 'resourceGroup'

@description('Short environment name, part of every resource name.')
@allowed(['dev', 'prod'])
param environmentName string

@description('Prefix of every resource name.')
@minLength(2)
@maxLength(10)
param namePrefix string = 'hwr'

@description('Azure region; defaults to the resource group\'s.')
param location string = resourceGroup().location

@description('Full image reference to run, e.g. myacr.azurecr.io/hwr:<sha>. Empty: deploy everything except the app.')
param containerImage string = ''

@description('Container Registry SKU.')
@allowed(['Basic', 'Standard', 'Premium'])
param acrSku string = 'Basic'

@description('Log Analytics retention in days.')
@minValue(30)
@maxValue(730)
param logRetentionDays int = 30

@description('vCPUs per replica (Consumption: 0.25 steps, memory = 2 GiB per vCPU).')
param cpu string = '0.5'

@description('Memory per replica, e.g. 1Gi.')
param memory string = '1Gi'

@description('Replicas kept running at all times (0 allows scale to zero, with a cold start).')
@minValue(0)
@maxValue(25)
param minReplicas int = 1

@description('Upper bound of the HTTP scale rule.')
@minValue(1)
@maxValue(100)
param maxReplicas int = 5

@description('Concurrent HTTP requests per replica before the scale rule adds one. Kept below the replica\'s admission limit (workers x (maxConcurrency + maxQueue), beyond which the service answers 503), so replicas are added while requests are still admitted; the template caps it at that limit minus one.')
@minValue(1)
param concurrentRequests int = 10

@description('HWR_MAX_CONCURRENCY: predictions computed at once per serving process.')
@minValue(1)
param maxConcurrency int = 1

@description('HWR_MAX_QUEUE: predict requests admitted per serving process beyond those computing; more get 503.')
@minValue(0)
param maxQueue int = 20

@description('Where writer enrolments live: postgres (Azure Database for PostgreSQL Flexible Server, credentials in Key Vault) or off (the writer endpoints answer 404 writers_disabled and nothing is stored). Never a replica\'s own disk: replicas would disagree and lose enrolments on every deployment.')
@allowed(['postgres', 'off'])
param writerStore string = 'postgres'

@description('PostgreSQL Flexible Server compute size and tier.')
param postgresSkuName string = 'Standard_B1ms'

@allowed(['Burstable', 'GeneralPurpose', 'MemoryOptimized'])
param postgresTier string = 'Burstable'

@description('PostgreSQL storage in GiB.')
@minValue(32)
param postgresStorageGb int = 32

@description('PostgreSQL major version.')
param postgresVersion string = '16'

@description('Scrape /metrics of every replica with a Prometheus agent sidecar and remote-write it to an Azure Monitor workspace (managed Prometheus).')
param prometheusMetrics bool = true

@description('The Prometheus agent sidecar image (the version docker-compose.yml runs).')
param prometheusImage string = 'prom/prometheus:v3.1.0'

@description('The revision now serving; it keeps 100 % of the traffic and the new revision gets 0 % until the pipeline promotes it. Empty (first deployment): the new revision takes the traffic.')
param stableRevision string = ''

@description('Suffix of the new revision\'s name (<app>--<suffix>), so the pipeline knows which revision to smoke-test. Empty: Azure picks one.')
param revisionSuffix string = ''

@description('HWR_LOG_LEVEL of the service.')
@allowed(['CRITICAL', 'ERROR', 'WARNING', 'INFO', 'DEBUG'])
param logLevel string = 'INFO'

@description('HWR_ORT_INTRA_OP_THREADS: ONNX Runtime threads per model (0 = one per core).')
@minValue(0)
param ortIntraOpThreads int = 1

@description('HWR_WORKERS: serving processes per replica (each loads the models, ~150 MB). One per whole vCPU; 1 below that.')
@minValue(1)
param workers int = 1

@description('HWR_COMPUTE_IN_EVENT_LOOP: compute predictions on the event loop (faster) rather than in a worker thread. Off here: the probes time out in 3 s, and on the loop they wait behind up to 21 admitted predictions, ~1 s each for maximal photos on 0.5 vCPU.')
param computeInEventLoop bool = false

@description('Tags applied to every resource.')
param tags object = {}

var suffix = uniqueString(resourceGroup().id, environmentName)
var baseName = '${namePrefix}-${environmentName}'
var allTags = union(tags, { application: 'handwriting-service', environment: environmentName })
// Built-in roles: AcrPull, Key Vault Secrets User, Monitoring Metrics Publisher.
var acrPullRoleId = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '7f951dda-4ed3-4680-a7ca-43fe172d538d')
var secretsUserRoleId = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '4633458b-17de-408a-b874-0445c86b69e6')
var metricsPublisherRoleId = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '3913510d-42f4-4e42-8a64-420c390055eb')
var port = 8000
var deployApp = !empty(containerImage)
var usePostgres = writerStore == 'postgres'
var appName = '${baseName}-app'
// Key Vault names: 3-24 characters, globally unique.
var vaultName = take('${namePrefix}${environmentName}kv${suffix}', 24)
// Secrets the pipeline creates once in Key Vault (random, never printed): see README.md.
var apiTokenSecretName = 'api-token'
var postgresPasswordSecretName = 'postgres-admin-password'
// Per replica, admission refuses (503) beyond workers x (computing + queued) requests.
var admissionLimit = workers * (maxConcurrency + maxQueue)
var scaleConcurrency = max(1, min(concurrentRequests, admissionLimit - 1))

resource logs 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: '${baseName}-logs'
  location: location
  tags: allTags
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: logRetentionDays
  }
}

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' = {
  // Globally unique, alphanumeric only.
  name: take(toLower('${namePrefix}${environmentName}${suffix}'), 50)
  location: location
  tags: allTags
  sku: { name: acrSku }
  properties: {
    adminUserEnabled: false // pulls use the managed identity, pushes the pipeline's Entra identity
    anonymousPullEnabled: false
    publicNetworkAccess: 'Enabled'
  }
}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: '${baseName}-id'
  location: location
  tags: allTags
}

resource acrPull 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, identity.id, acrPullRoleId)
  scope: registry
  properties: {
    roleDefinitionId: acrPullRoleId
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// Secrets: RBAC only (no access policies), soft delete + purge protection so a deleted secret can
// be recovered. Public network access: a Consumption environment without a VNet reaches it over the
// internet (as it does the registry); the managed identity is the only reader.
resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: vaultName
  location: location
  tags: allTags
  properties: {
    tenantId: subscription().tenantId
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    // The PostgreSQL module reads the admin password with getSecret() at deployment time.
    enabledForTemplateDeployment: true
    publicNetworkAccess: 'Enabled'
  }
}

resource secretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, identity.id, secretsUserRoleId)
  scope: vault
  properties: {
    roleDefinitionId: secretsUserRoleId
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// The same vault, declared `existing` for getSecret() (only allowed on existing vaults).
resource vaultSecrets 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: vaultName
}

// Writer enrolments: one database every replica and every revision share, surviving deployments.
module postgres 'postgres.bicep' = if (deployApp && usePostgres) {
  name: 'postgres'
  dependsOn: [vault]
  params: {
    name: '${baseName}-pg-${suffix}'
    location: location
    tags: allTags
    skuName: postgresSkuName
    tier: postgresTier
    storageSizeGB: postgresStorageGb
    version: postgresVersion
    administratorPassword: vaultSecrets.getSecret(postgresPasswordSecretName)
    vaultName: vaultName
  }
}

// Managed Prometheus: an Azure Monitor workspace, and the data collection endpoint + rule through
// which the sidecar remote-writes (Container Apps has no managed scraper of its own).
resource metricsWorkspace 'Microsoft.Monitor/accounts@2023-04-03' = if (prometheusMetrics) {
  name: '${baseName}-prometheus'
  location: location
  tags: allTags
}

resource metricsEndpoint 'Microsoft.Insights/dataCollectionEndpoints@2022-06-01' = if (prometheusMetrics) {
  name: '${baseName}-dce'
  location: location
  tags: allTags
  kind: 'Linux'
  properties: {
    networkAcls: { publicNetworkAccess: 'Enabled' }
  }
}

resource metricsRule 'Microsoft.Insights/dataCollectionRules@2022-06-01' = if (prometheusMetrics) {
  name: '${baseName}-prometheus-dcr'
  location: location
  tags: allTags
  kind: 'Linux'
  properties: {
    dataCollectionEndpointId: metricsEndpoint.id
    dataSources: {
      prometheusForwarder: [
        {
          name: 'PrometheusDataSource'
          streams: ['Microsoft-PrometheusMetrics']
          labelIncludeFilter: {}
        }
      ]
    }
    destinations: {
      monitoringAccounts: [
        {
          accountResourceId: metricsWorkspace.id
          name: 'MonitoringAccount'
        }
      ]
    }
    dataFlows: [
      {
        streams: ['Microsoft-PrometheusMetrics']
        destinations: ['MonitoringAccount']
      }
    ]
  }
}

resource metricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (prometheusMetrics) {
  name: guid(metricsRule.id, identity.id, metricsPublisherRoleId)
  scope: metricsRule
  properties: {
    roleDefinitionId: metricsPublisherRoleId
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// The sidecar's configuration: scrape the service on localhost (every worker's series, summed by
// the service's own /metrics), label each series with its replica so replicas never overwrite
// each other, and remote-write with the app's managed identity (Prometheus >= 2.45 `azuread`).
#disable-next-line BCP318
var remoteWriteUrl = prometheusMetrics ? '${metricsEndpoint.properties.metricsIngestion.endpoint}/dataCollectionRules/${metricsRule.properties.immutableId}/streams/Microsoft-PrometheusMetrics/api/v1/write?api-version=2023-04-24' : ''
var prometheusConfig = join([
  'global:'
  '  scrape_interval: 30s'
  '  external_labels:'
  '    app: ${appName}'
  '    replica: \${CONTAINER_APP_REPLICA_NAME}'
  'scrape_configs:'
  '  - job_name: hwr'
  '    static_configs:'
  '      - targets: [\'localhost:${port}\']'
  'remote_write:'
  '  - url: \'${remoteWriteUrl}\''
  '    azuread:'
  '      cloud: AzurePublic'
  '      managed_identity:'
  '        client_id: ${identity.properties.clientId}'
  ''
], '\n')

resource managedEnv 'Microsoft.App/managedEnvironments@2024-03-01' = {
  name: '${baseName}-env'
  location: location
  tags: allTags
  properties: {
    appLogsConfiguration: {
      destination: 'log-analytics'
      logAnalyticsConfiguration: {
        customerId: logs.properties.customerId
        sharedKey: logs.listKeys().primarySharedKey
      }
    }
    workloadProfiles: [
      {
        name: 'Consumption'
        workloadProfileType: 'Consumption'
      }
    ]
  }
}

var apiTokenSecret = {
  name: 'api-token'
  keyVaultUrl: '${vault.properties.vaultUri}secrets/${apiTokenSecretName}'
  identity: identity.id
}
#disable-next-line BCP318
var writerDbSecret = usePostgres && deployApp ? [{ name: 'writer-db', keyVaultUrl: postgres.outputs.writerDbSecretUri, identity: identity.id }] : []
var prometheusSecret = prometheusMetrics ? [{ name: 'prometheus-config', value: prometheusConfig }] : []
var postgresEnv = [{ name: 'HWR_WRITER_DB', secretRef: 'writer-db' }]
// Off: every writer endpoint answers 404 writers_disabled; no writer model is loaded and no store
// is opened (app/runtime/writers.py).
var writersOffEnv = [{ name: 'HWR_WRITERS_ENABLED', value: 'false' }]
var writerEnv = usePostgres ? postgresEnv : writersOffEnv
// First deployment: nothing serves yet, so the new revision takes the traffic at once. Later ones:
// the serving revision keeps it all; the new one is reachable on its own URL (and the label's).
var firstTraffic = [{ latestRevision: true, weight: 100 }]
var candidateTraffic = [
  { revisionName: stableRevision, weight: 100 }
  { latestRevision: true, weight: 0, label: 'candidate' }
]
var traffic = empty(stableRevision) ? firstTraffic : candidateTraffic

resource app 'Microsoft.App/containerApps@2024-03-01' = if (deployApp) {
  name: appName
  location: location
  tags: allTags
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identity.id}': {}
    }
  }
  // The identity must be able to read the secrets and publish metrics before the revision starts.
  dependsOn: [acrPull, secretsUser, metricsPublisher]
  properties: {
    environmentId: managedEnv.id
    workloadProfileName: 'Consumption'
    configuration: {
      // Multiple: the new revision runs beside the one serving, reachable on its own URL with 0 %
      // of the traffic until it passes the smoke test; the previous one can take the traffic back.
      activeRevisionsMode: 'Multiple'
      ingress: {
        external: true
        targetPort: port
        transport: 'auto'
        allowInsecure: false
        traffic: traffic
      }
      registries: [
        {
          server: registry.properties.loginServer
          identity: identity.id
        }
      ]
      // Key Vault references, read with the managed identity (versionless: the latest version,
      // picked up by new revisions and by running ones within 30 minutes).
      secrets: concat([apiTokenSecret], writerDbSecret, prometheusSecret)
    }
    template: {
      revisionSuffix: empty(revisionSuffix) ? null : revisionSuffix
      containers: concat([
        {
          name: 'hwr'
          image: containerImage
          resources: {
            cpu: json(cpu)
            memory: memory
          }
          env: concat([
            { name: 'HWR_PORT', value: string(port) }
            { name: 'HWR_LOG_LEVEL', value: logLevel }
            { name: 'HWR_ORT_INTRA_OP_THREADS', value: string(ortIntraOpThreads) }
            { name: 'HWR_WORKERS', value: string(workers) }
            { name: 'HWR_COMPUTE_IN_EVENT_LOOP', value: string(computeInEventLoop) }
            { name: 'HWR_MAX_CONCURRENCY', value: string(maxConcurrency) }
            { name: 'HWR_MAX_QUEUE', value: string(maxQueue) }
            // Required on the public ingress: without the secret the revision does not start.
            { name: 'HWR_API_TOKEN', secretRef: 'api-token' }
          ], writerEnv)
          probes: [
            {
              type: 'Startup'
              httpGet: { path: '/health/ready', port: port }
              initialDelaySeconds: 2
              periodSeconds: 3
              failureThreshold: 20
              timeoutSeconds: 3
            }
            {
              type: 'Liveness'
              httpGet: { path: '/health/live', port: port }
              periodSeconds: 15
              failureThreshold: 3
              timeoutSeconds: 3
            }
            {
              type: 'Readiness'
              httpGet: { path: '/health/ready', port: port }
              periodSeconds: 10
              failureThreshold: 3
              timeoutSeconds: 3
            }
          ]
        }
      ], prometheusMetrics ? [
        {
          // Agent mode: scrape and forward only, no local storage or queries.
          name: 'prometheus'
          image: prometheusImage
          args: [
            '--agent'
            '--config.file=/etc/prometheus/prometheus.yml'
            '--storage.agent.path=/tmp/prometheus'
            // ${CONTAINER_APP_REPLICA_NAME} in external_labels.
            '--enable-feature=expand-external-labels'
          ]
          resources: {
            cpu: json('0.25')
            memory: '0.5Gi'
          }
          volumeMounts: [
            { volumeName: 'prometheus-config', mountPath: '/etc/prometheus' }
          ]
        }
      ] : [])
      volumes: prometheusMetrics ? [
        {
          name: 'prometheus-config'
          storageType: 'Secret'
          secrets: [{ secretRef: 'prometheus-config', path: 'prometheus.yml' }]
        }
      ] : []
      scale: {
        minReplicas: minReplicas
        maxReplicas: maxReplicas
        rules: [
          {
            name: 'http-concurrency'
            http: {
              metadata: {
                concurrentRequests: string(scaleConcurrency)
              }
            }
          }
        ]
      }
    }
  }
}

output acrName string = registry.name
output acrLoginServer string = registry.properties.loginServer
output identityId string = identity.id
output environmentId string = managedEnv.id
output appName string = appName
output keyVaultName string = vault.name
output apiTokenSecretName string = apiTokenSecretName
output postgresPasswordSecretName string = postgresPasswordSecretName
output writerStore string = writerStore
output scaleConcurrency int = scaleConcurrency
output admissionLimit int = admissionLimit
#disable-next-line BCP318
output prometheusQueryEndpoint string = prometheusMetrics ? metricsWorkspace.properties.metrics.prometheusQueryEndpoint : ''
// The app exists in this deployment only when containerImage is set; ARM evaluates one branch.
#disable-next-line BCP318
output appFqdn string = !empty(containerImage) ? app.properties.configuration.ingress.fqdn : ''
#disable-next-line BCP318
output latestRevisionName string = !empty(containerImage) ? app.properties.latestRevisionName : ''
