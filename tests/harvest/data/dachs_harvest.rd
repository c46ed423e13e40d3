<?xml version="1.0" encoding="utf-8"?>
<!-- An archive for vosim harvest: FITS images and cubes in DaCHS' products
     table (served by getproduct, embargo honoured), published into DaCHS'
     own ivoa.obscore with DaCHS' DIDs (getStandardPubDID). Images are
     reached directly (access_format image/fits), cubes through this RD's
     DataLink service (SODA's FITS descriptor). DaCHS 2.7's obscore has no
     release date, so the table keeps it; the mapping file names the table. -->
<resource schema="vosim_harvest">
  <meta name="title">vosim harvest test archive</meta>
  <meta name="description">FITS images and cubes that the vosim harvest tests read.</meta>
  <meta name="creationDate">2024-01-01T00:00:00</meta>
  <meta name="subject">observational-astronomy</meta>

  <table id="images" onDisk="True" adql="True" mixin="//products#table">
    <meta name="description">The archive's images and cubes.</meta>
    <meta name="_associatedDatalinkService">
      <meta name="serviceId">dl</meta>
      <meta name="idColumn">obs_publisher_did</meta>
    </meta>
    <mixin
      productType="dataproduct_type"
      calibLevel="2"
      collectionName="'vosim harvest'"
      did="obs_publisher_did"
      obsId="obs_id"
      accessURL="access_url"
      mime="access_format"
      size="accsize/1024"
      preview="NULL"
      targetName="target_name"
      ra="s_ra"
      dec="s_dec"
      facilityName="'ALMA'"
    >//obscore#publish</mixin>
    <column name="obs_publisher_did" type="text" ucd="meta.ref.ivoid"
      description="Publisher DID of the product"/>
    <column name="obs_id" type="text" ucd="meta.id" description="Observation identifier"/>
    <column name="dataproduct_type" type="text" ucd="meta.code.class"
      description="image or cube"/>
    <column name="access_url" type="text" ucd="meta.ref.url" description="Where the file is"/>
    <column name="access_format" type="text" ucd="meta.code.mime"
      description="FITS, or DataLink for cubes"/>
    <column name="target_name" type="text" ucd="meta.id;src" description="Target name"/>
    <column name="s_ra" type="double precision" unit="deg" ucd="pos.eq.ra"
      description="Right ascension of the image centre"/>
    <column name="s_dec" type="double precision" unit="deg" ucd="pos.eq.dec"
      description="Declination of the image centre"/>
    <column name="obs_release_date" type="timestamp" ucd="time.release"
      description="End of the proprietary period"/>
    <column name="scientific_category" type="text" ucd="meta.code.class"
      description="Scientific category of the proposal"/>
  </table>

  <data id="import">
    <sources>images.csv</sources>
    <csvGrammar>
      <rowfilter procDef="//products#define">
        <bind key="table">"\schema.images"</bind>
        <bind key="accref">@accref</bind>
        <bind key="path">@accref</bind>
        <bind key="fsize">int(@fsize)</bind>
        <bind key="mime">"image/fits"</bind>
        <bind key="embargo">parseDate(@embargo) if @embargo else None</bind>
      </rowfilter>
    </csvGrammar>
    <make table="images">
      <rowmaker idmaps="obs_id,dataproduct_type,access_url,access_format,target_name,s_ra,s_dec,scientific_category">
        <map key="obs_publisher_did">getStandardPubDID(@accref)</map>
        <map key="obs_release_date" source="obs_release_date" nullExcs="ValueError"/>
      </rowmaker>
    </make>
  </data>

  <service id="dl" allowed="dlget,dlmeta">
    <meta name="title">vosim harvest test DataLink</meta>
    <datalinkCore>
      <descriptorGenerator procDef="//soda#fits_genDesc"/>
      <dataFunction procDef="//soda#fits_makeHDUList"/>
      <dataFormatter procDef="//soda#fits_formatHDUs"/>
    </datalinkCore>
  </service>
</resource>
