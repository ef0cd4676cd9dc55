// Handwriting service on Azure Container Apps: registry, logs, environment, identity, app.
//
// Deployed twice per release by .github/workflows/deploy.yml (see README.md here):
//   1. without containerImage: everything but the app (registry first, so there is somewhere to push);
//   2. with containerImage=<registry>/hwr:<commit>: the app, as a new revision taking all the traffic.
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

@description('Concurrent HTTP requests per replica before the scale rule adds one.')
@minValue(1)
param concurrentRequests int = 20

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
// Built-in role "AcrPull".
var acrPullRoleId = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '7f951dda-4ed3-4680-a7ca-43fe172d538d')
var port = 8000

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

resource app 'Microsoft.App/containerApps@2024-03-01' = if (!empty(containerImage)) {
  name: '${baseName}-app'
  location: location
  tags: allTags
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identity.id}': {}
    }
  }
  dependsOn: [acrPull]
  properties: {
    environmentId: managedEnv.id
    workloadProfileName: 'Consumption'
    configuration: {
      // Multiple: the previous revision stays addressable, so the pipeline can route back to it.
      activeRevisionsMode: 'Multiple'
      ingress: {
        external: true
        targetPort: port
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
          server: registry.properties.loginServer
          identity: identity.id
        }
      ]
    }
    template: {
      containers: [
        {
          name: 'hwr'
          image: containerImage
          resources: {
            cpu: json(cpu)
            memory: memory
          }
          env: [
            { name: 'HWR_PORT', value: string(port) }
            { name: 'HWR_LOG_LEVEL', value: logLevel }
            { name: 'HWR_ORT_INTRA_OP_THREADS', value: string(ortIntraOpThreads) }
            { name: 'HWR_WORKERS', value: string(workers) }
            { name: 'HWR_COMPUTE_IN_EVENT_LOOP', value: string(computeInEventLoop) }
          ]
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

output acrName string = registry.name
output acrLoginServer string = registry.properties.loginServer
output identityId string = identity.id
output environmentId string = managedEnv.id
output appName string = '${baseName}-app'
// The app exists in this deployment only when containerImage is set; ARM evaluates one branch.
#disable-next-line BCP318
output appFqdn string = !empty(containerImage) ? app.properties.configuration.ingress.fqdn : ''
#disable-next-line BCP318
output latestRevisionName string = !empty(containerImage) ? app.properties.latestRevisionName : ''
